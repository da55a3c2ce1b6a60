"""What a plain FAISS index is in this library's terms: its index type, config, metric and ids.

The seed's FAQ promises that existing IVF indexes keep working. An index written by
`faiss.write_index` has no manifest, so `load_index` refuses it; `FAISSIndex.from_faiss_index`
(and `faiss-operator import`) turn it into an artifact, reading everything the manifest needs
from the FAISS objects themselves. Only the structures this library builds are described (an
IndexIDMap around one of them included); anything else is refused with its FAISS class named,
rather than served under a type that would misreport its parameters.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import faiss

from faiss_operator.index import config as index_config
from faiss_operator.index import records

SUPPORTED = "IndexFlat (Flat), IndexIVFFlat (IVF), IndexIVFPQ (IVFPQ), IndexHNSWFlat (HNSW), or an IndexIDMap of one"


class ImportRefused(ValueError):
    """A FAISS index, or ids and metadata for it, that cannot become an artifact; says why."""


@dataclasses.dataclass(frozen=True)
class Described:
    """The index to store (an IndexIDMap's inner index), its type, config, metric, ids and factory."""

    index: Any
    index_type: index_config.IndexTypeName
    config: dict[str, Any]
    metric: index_config.Metric
    ids: list[records.ExternalId]
    factory: str


def describe(index: Any) -> Described:
    """Read type, config and metric from `index`; ids are 0..n-1, or the ids of an IndexIDMap."""
    outer = faiss.downcast_index(index)
    ids: list[records.ExternalId] = list(range(int(outer.ntotal)))
    if isinstance(outer, faiss.IndexIDMap):  # IndexIDMap2 derives from it
        ids = [int(value) for value in faiss.vector_to_array(outer.id_map)]
        outer = faiss.downcast_index(outer.index)
    metric = _metric(outer)
    # A downcast wrapper does not own its C++ object, which dies with the caller's (or the ID
    # map's) wrapper: the index kept is a copy that owns itself.
    outer = faiss.deserialize_index(faiss.serialize_index(outer))
    if isinstance(outer, faiss.IndexIVFPQ):
        config = {"nlist": int(outer.nlist), "nprobe": int(outer.nprobe), "m_pq": int(outer.pq.M),
                  "nbits": int(outer.pq.nbits)}
        return Described(outer, "IVFPQ", config, metric, ids, f"IVF{outer.nlist},PQ{outer.pq.M}x{outer.pq.nbits}")
    if isinstance(outer, faiss.IndexIVFFlat):
        config = {"nlist": int(outer.nlist), "nprobe": int(outer.nprobe)}
        return Described(outer, "IVF", config, metric, ids, f"IVF{outer.nlist},Flat")
    if isinstance(outer, faiss.IndexHNSWFlat):
        graph: Any = outer.hnsw
        m = int(graph.nb_neighbors(1))  # M links above level 0 (2*M at level 0), as HNSW{M} builds
        config = {"m": m, "ef_construction": int(outer.hnsw.efConstruction), "ef_search": int(outer.hnsw.efSearch)}
        return Described(outer, "HNSW", config, metric, ids, f"HNSW{m}")
    if isinstance(outer, faiss.IndexFlat):
        return Described(outer, "Flat", {}, metric, ids, "Flat")
    raise ImportRefused(f"cannot import a {type(outer).__name__}: supported are {SUPPORTED}")


def _metric(index: Any) -> index_config.Metric:
    if int(index.metric_type) == faiss.METRIC_L2:
        return index_config.Metric.L2
    if int(index.metric_type) == faiss.METRIC_INNER_PRODUCT:
        return index_config.Metric.INNER_PRODUCT
    raise ImportRefused(f"cannot import an index of FAISS metric type {int(index.metric_type)}: L2 or inner product only")
