"""Tables reserved for every vector up front: adding in chunks then never reallocates them
(a reallocation holds the old and the new table at once), and the index is the same."""

from __future__ import annotations

from typing import Any

import faiss
import numpy as np
import pytest

from faiss_operator.index import capacity

VECTORS = np.random.default_rng(5).standard_normal((3000, 16)).astype(np.float32)


def _tables(index: Any) -> list[int]:
    """Addresses of the code and graph tables: they change when a table is reallocated."""
    inner: Any = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexPreTransform) else index
    tables = []
    if isinstance(inner, faiss.IndexHNSW):
        graph: Any = inner.hnsw
        tables += [int(graph.neighbors.data()), int(graph.levels.data()), int(graph.offsets.data())]
        inner = faiss.downcast_index(inner.storage)
    return [*tables, int(inner.codes.data())]


@pytest.mark.parametrize("factory_string", ["Flat", "HNSW8", "HNSW8_SQ6", "OPQ4,HNSW8_PQ4"])
def test_chunked_adds_fill_the_reserved_tables_in_place(factory_string: str) -> None:
    index = faiss.index_factory(16, factory_string)
    if not index.is_trained:
        index.train(VECTORS)
    capacity.reserve(index, len(VECTORS))
    reserved = _tables(index)
    for start in range(0, len(VECTORS), 500):
        index.add(VECTORS[start : start + 500])
    assert index.ntotal == len(VECTORS) and _tables(index) == reserved


def test_a_reserved_flat_index_equals_one_add_of_everything() -> None:
    chunked, whole = faiss.IndexFlatL2(16), faiss.IndexFlatL2(16)
    capacity.reserve(chunked, len(VECTORS))
    for start in range(0, len(VECTORS), 700):
        chunked.add(VECTORS[start : start + 700])
    whole.add(VECTORS)
    assert np.array_equal(faiss.serialize_index(chunked), faiss.serialize_index(whole))


def test_ivf_lists_are_left_to_grow() -> None:
    index = faiss.index_factory(16, "IVF4,Flat")
    index.train(VECTORS)
    capacity.reserve(index, len(VECTORS))  # no table to reserve: a no-op, not an error
    index.add(VECTORS)
    assert index.ntotal == len(VECTORS)
