"""Turn a typed config into a FAISS index, and per-call search parameters into FAISS objects.

This is the one place that knows how each index type of the project maps onto FAISS: the
factory string, the training sample it needs, and where its search-time knobs live. Everything
else handles `faiss.Index` objects through this module, so a change of construction (for example
the OPQ+HNSW encoding) happens here alone.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import faiss
import numpy as np

from faiss_operator.index import config as index_config, search_params as search_rules, training_progress

logger = logging.getLogger(__name__)

# faiss's bundled type stubs lag behind its SWIG module (SearchParametersHNSW is missing).
_faiss: Any = faiss
# A FAISS PQ or SQ codebook is trained by k-means with 2**nbits centroids per sub-vector.
PQ_CENTROIDS_PER_BIT = 2
SQ_TRAINING_SAMPLE = 65536


class TrainingError(ValueError):
    """Too few (or unusable) vectors to train the chosen index type."""


def faiss_metric(metric: index_config.Metric) -> int:
    if metric is index_config.Metric.INNER_PRODUCT:
        return int(faiss.METRIC_INNER_PRODUCT)
    return int(faiss.METRIC_L2)


@dataclasses.dataclass(frozen=True)
class BuildPlan:
    """How to build one index: the factory string and the training it needs."""

    factory: str
    needs_training: bool
    # Vectors the training must see at the very least (FAISS refuses fewer), and how many to use.
    min_training_vectors: int
    training_vectors: int
    nlist: int | None
    # Fewer training vectors than this (39 per centroid, the FAISS guideline) builds with one
    # warning; 0 when the type clusters nothing.
    recommended_training_vectors: int = 0
    # The k-means behind the recommendation, for the warning: "<centroids> centroids".
    centroids: int = 0


def plan_build(
    config: index_config.IndexConfig, *, dimension: int, num_vectors: int
) -> BuildPlan:
    """The FAISS construction for `config` on `num_vectors` vectors of `dimension`."""
    plan = _plan_construction(config, dimension=dimension, num_vectors=num_vectors)
    train_size = getattr(config, "train_size", None)
    if train_size is not None and train_size < plan.min_training_vectors:
        raise index_config.ConfigError(
            f"config.train_size: {train_size} vectors cannot train {plan.factory}, which needs at least "
            f"{plan.min_training_vectors} (one per centroid); raise train_size or leave it unset"
        )
    return plan


def _plan_construction(
    config: index_config.IndexConfig, *, dimension: int, num_vectors: int
) -> BuildPlan:
    if isinstance(config, index_config.FlatConfig):
        return BuildPlan("Flat", needs_training=False, min_training_vectors=0, training_vectors=0, nlist=None)
    if isinstance(config, index_config.HNSWConfig):
        return BuildPlan(
            f"HNSW{config.m}", needs_training=False, min_training_vectors=0, training_vectors=0, nlist=None
        )
    if isinstance(config, index_config.IVFPQConfig):
        index_config.check_dimension(config, dimension)
        m_pq = index_config.effective_m_pq(config, dimension)
        nlist = index_config.effective_nlist(config, num_vectors)
        codebook = PQ_CENTROIDS_PER_BIT**config.nbits
        centroids = max(nlist, codebook)
        return BuildPlan(
            f"IVF{nlist},PQ{m_pq}x{config.nbits}",
            needs_training=True,
            min_training_vectors=centroids,
            training_vectors=index_config.training_sample_size(config.train_size, centroids, num_vectors),
            nlist=nlist,
            recommended_training_vectors=index_config.minimum_training_vectors(centroids),
            centroids=centroids,
        )
    if isinstance(config, index_config.IVFConfig):
        nlist = index_config.effective_nlist(config, num_vectors)
        return BuildPlan(
            f"IVF{nlist},Flat",
            needs_training=True,
            min_training_vectors=nlist,
            training_vectors=index_config.training_sample_size(config.train_size, nlist, num_vectors),
            nlist=nlist,
            recommended_training_vectors=index_config.minimum_training_vectors(nlist),
            centroids=nlist,
        )
    return _plan_opq_hnsw(config, dimension=dimension, num_vectors=num_vectors)


def _plan_opq_hnsw(config: index_config.OPQHNSWConfig, *, dimension: int, num_vectors: int) -> BuildPlan:
    if config.encoding is index_config.ScalarCodec.PQ:
        index_config.check_dimension(config, dimension)
        m_pq = index_config.effective_m_pq(config, dimension)
        rotation_blocks = config.n_subquantizers or m_pq
        codebook = PQ_CENTROIDS_PER_BIT**8
        return BuildPlan(
            f"OPQ{rotation_blocks},HNSW{config.m_hnsw}_PQ{m_pq}",
            needs_training=True,
            min_training_vectors=codebook,
            training_vectors=index_config.training_sample_size(config.train_size, codebook, num_vectors),
            nlist=None,
            recommended_training_vectors=index_config.minimum_training_vectors(codebook),
            centroids=codebook,
        )
    # A scalar quantizer learns one range per dimension: any sample trains it, more is no better.
    wanted = config.train_size if config.train_size is not None else SQ_TRAINING_SAMPLE
    return BuildPlan(
        f"HNSW{config.m_hnsw}_{config.encoding.value}",
        needs_training=True,
        min_training_vectors=1,
        training_vectors=min(wanted, num_vectors),
        nlist=None,
    )


def create_index(
    config: index_config.IndexConfig,
    *,
    dimension: int,
    metric: index_config.Metric,
    num_vectors: int,
) -> tuple[Any, BuildPlan]:
    """An empty FAISS index for `config`, with its build-time and default search parameters set."""
    plan = plan_build(config, dimension=dimension, num_vectors=num_vectors)
    index = faiss.index_factory(dimension, plan.factory, faiss_metric(metric))
    if isinstance(config, (index_config.HNSWConfig, index_config.OPQHNSWConfig)):
        hnsw_of(index).efConstruction = config.ef_construction
    if isinstance(config, index_config.IVFPQConfig):
        # Polysemous codes only serve Hamming pre-filtering, which we never enable; training them
        # costs more than the whole rest of the build.
        ivfpq: Any = faiss.downcast_index(index)
        ivfpq.do_polysemous_training = False
    if isinstance(config, index_config.OPQHNSWConfig) and config.encoding is index_config.ScalarCodec.PQ:
        rotated: Any = faiss.downcast_index(index)
        graph: Any = faiss.downcast_index(rotated.index)
        storage: Any = faiss.downcast_index(graph.storage)
        storage.do_polysemous_training = False
    apply_search_defaults(index, search_rules.resolve(config, nlist=plan.nlist))
    return index, plan


def train_index(
    index: Any, plan: BuildPlan, vectors: np.ndarray, *, seed: int = 0,
    on_iteration: training_progress.OnIteration | None = None,
) -> None:
    """Train on a sample of `vectors` as the plan asks; `on_iteration(done, iterations, objective)`
    is called after each iteration of an IVF's coarse k-means (index/training_progress.py).

    Below `plan.min_training_vectors` (one per centroid: FAISS cannot cluster fewer points than
    centroids) it is a TrainingError saying how many are needed. Below
    `plan.recommended_training_vectors` (39 per centroid) it trains, with one warning in the log
    naming the recommended count; FAISS's own warning, printed to stderr for every sub-quantizer
    it trains (48 lines for m_pq 48, hundreds with OPQ), is silenced.
    """
    available = vectors.shape[0]
    if available < plan.min_training_vectors:
        raise TrainingError(
            f"too few vectors to train {plan.factory}: got {available}, need at least "
            f"{plan.min_training_vectors} (one per centroid) in the first add_embeddings call"
        )
    sample = vectors
    if plan.training_vectors < available:
        rows = np.random.default_rng(seed).choice(available, size=plan.training_vectors, replace=False)
        sample = vectors[np.sort(rows)]
    if len(sample) < plan.recommended_training_vectors:
        logger.warning(
            "Training %s on %d vectors, fewer than the %d recommended (%d per centroid for %d centroids); "
            "recall may suffer: give at least %d vectors (or train_size), or fewer centroids",
            plan.factory, len(sample), plan.recommended_training_vectors, index_config.MIN_POINTS_PER_CENTROID,
            plan.centroids, plan.recommended_training_vectors,
        )
    ivf = _ivf_of(index)
    with _quiet_clustering(index), (
        training_progress.reporting_iterations(ivf.cp, on_iteration)
        if ivf is not None and on_iteration is not None else nullcontext()
    ):
        index.train(np.ascontiguousarray(sample))


def _ivf_of(index: Any) -> Any:
    """The IndexIVF inside `index` (behind an OPQ transform too), or None."""
    try:
        return faiss.downcast_index(faiss.extract_index_ivf(index))
    except RuntimeError:
        return None


@contextmanager
def _quiet_clustering(index: Any) -> Iterator[None]:
    """Lower FAISS's k-means `min_points_per_centroid` to 1 on every clustering the training of
    `index` runs, which only switches off its stderr warning (train_index warns once instead)."""
    settings: list[Any] = []
    rotation: Any = None
    quantizer: Any = None
    if isinstance(index, faiss.IndexPreTransform):
        transforms: Any = index.chain
        rotation = faiss.downcast_VectorTransform(transforms.at(0))
        if isinstance(rotation, faiss.OPQMatrix):
            # OPQ trains a PQ of its own each iteration unless given one; give it a quiet one.
            quantizer = faiss.ProductQuantizer(rotation.d_out, rotation.M, 8)
            settings.append(quantizer.cp)
            rotation.pq = quantizer
        inner: Any = faiss.downcast_index(index.index)
    else:
        inner = index
    ivf = _ivf_of(index)
    if ivf is not None:
        settings.append(ivf.cp)
    for owner in (ivf, _pq_storage(inner)):
        if owner is not None and hasattr(owner, "pq"):
            settings.append(owner.pq.cp)
    for cp in settings:
        cp.min_points_per_centroid = 1
    try:
        yield
    finally:
        if quantizer is not None:
            rotation.pq = None  # the quantizer is freed with this frame; OPQ must not keep it


def _pq_storage(index: Any) -> Any:
    """The PQ codes' index inside an HNSW graph (HNSW{m}_PQ{m_pq}), or None."""
    if not isinstance(index, faiss.IndexHNSW):
        return None
    graph: Any = faiss.downcast_index(index)
    return faiss.downcast_index(graph.storage)


def hnsw_of(index: Any) -> Any:
    """The HNSW graph object inside `index` (also behind an OPQ pre-transform)."""
    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexPreTransform) else index
    graph_index: Any = faiss.downcast_index(inner)
    return graph_index.hnsw


def apply_search_defaults(index: Any, values: dict[str, int]) -> None:
    """Store resolved search-time parameters (search_params.resolve) on the index, for calls
    without overrides."""
    if "ef_search" in values:
        hnsw_of(index).efSearch = int(values["ef_search"])
    if "nprobe" in values:
        faiss.extract_index_ivf(index).nprobe = int(values["nprobe"])


def search_parameters(index: Any, values: dict[str, int]) -> Any:
    """FAISS per-call SearchParameters for `values` (ef_search, nprobe); thread-safe, unlike
    setting the fields on the shared index."""
    inner: Any
    if "ef_search" in values:
        inner = _faiss.SearchParametersHNSW()
        inner.efSearch = int(values["ef_search"])
    elif "nprobe" in values:
        inner = faiss.SearchParametersIVF()
        inner.nprobe = int(values["nprobe"])
    else:
        return None
    if isinstance(index, faiss.IndexPreTransform):
        outer: Any = faiss.SearchParametersPreTransform()
        outer.index_params = inner
        # SWIG does not keep the inner object alive through the outer one.
        outer.referenced_objects = [inner]
        return outer
    return inner


def effective_nlist_of(index: Any) -> int | None:
    """nlist of a built IVF index, or None for other types."""
    try:
        return int(faiss.extract_index_ivf(index).nlist)
    except RuntimeError:
        return None


def built_fields(index: Any, config: index_config.IndexConfig) -> dict[str, Any]:
    """Build-time values as the built `index` has them, including those chosen from the data
    when the config left them unset: nlist (IVF, IVFPQ), m_pq (IVFPQ, OPQ+HNSW with PQ) and
    n_subquantizers (OPQ+HNSW with PQ)."""
    fields: dict[str, Any] = {}
    if isinstance(config, index_config.IVFConfig):
        ivf: Any = faiss.extract_index_ivf(index)
        fields["nlist"] = int(ivf.nlist)
        if isinstance(config, index_config.IVFPQConfig):
            ivfpq: Any = faiss.downcast_index(ivf)
            fields["m_pq"] = int(ivfpq.pq.M)
    if isinstance(config, index_config.OPQHNSWConfig) and isinstance(index, faiss.IndexPreTransform):
        chain: Any = index.chain
        rotation: Any = faiss.downcast_VectorTransform(chain.at(0))
        storage = _pq_storage(faiss.downcast_index(index.index))
        fields["n_subquantizers"] = int(rotation.M)
        if storage is not None:
            fields["m_pq"] = int(storage.pq.M)
    return fields
