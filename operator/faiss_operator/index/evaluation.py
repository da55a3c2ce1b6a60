"""Measure an index the way the operator's gates judge it: recall, latency, throughput, memory.

Shared by the build Job (which writes these numbers into the revision's report), the tuner and
the benchmarks, so that a number means the same thing wherever it is quoted. Latency is measured
one query at a time on one thread, as a serving replica answers a request; throughput with all
threads on batches.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

import faiss
import numpy as np

from faiss_operator.index import config as index_config
from faiss_operator.index import factory

SearchFn = Callable[[np.ndarray, int], Any]
T = TypeVar("T")


class ArraySearcher(Protocol):
    def search_arrays(
        self, queries: np.ndarray, k: int, params: dict[str, int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]: ...


@dataclasses.dataclass(frozen=True)
class LatencyStats:
    p50_ms: float
    p90_ms: float
    p99_ms: float
    count: int

    def as_dict(self) -> dict[str, float | int]:
        return dataclasses.asdict(self)


def percentiles_ms(samples_seconds: np.ndarray | list[float]) -> LatencyStats:
    values = np.asarray(samples_seconds, dtype=np.float64) * 1000.0
    if values.size == 0:
        return LatencyStats(p50_ms=0.0, p90_ms=0.0, p99_ms=0.0, count=0)
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return LatencyStats(p50_ms=float(p50), p90_ms=float(p90), p99_ms=float(p99), count=int(values.size))


@contextlib.contextmanager
def faiss_threads(count: int | None) -> Iterator[None]:
    """Run the block with FAISS (OpenMP) limited to `count` threads; None leaves it alone."""
    if count is None:
        yield
        return
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(count)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


def as_search_fn(target: Any) -> SearchFn:
    """A function (queries, k) -> anything, from a FAISSIndex, a raw faiss.Index or a callable."""
    if hasattr(target, "search_arrays"):
        searcher: ArraySearcher = target
        return lambda queries, k: searcher.search_arrays(queries, k)
    if isinstance(target, faiss.Index):
        index = target
        return lambda queries, k: index.search(queries, k)
    if callable(target):
        function: SearchFn = target
        return function
    raise TypeError(f"cannot search with {type(target).__name__}: expected a FAISSIndex, faiss.Index or callable")


def _as_matrix(name: str, values: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(values, dtype=np.float32)
    if array.ndim != 2 or array.shape[0] == 0:
        raise ValueError(f"{name}: expected a non-empty 2-d array, got shape {array.shape}")
    return array


def exact_neighbors(
    base: np.ndarray, queries: np.ndarray, k: int, metric: index_config.Metric | str = index_config.Metric.L2
) -> np.ndarray:
    """Positions (rows of `base`) of the true k nearest neighbours of each query, by brute force."""
    base = _as_matrix("base", base)
    queries = _as_matrix("queries", queries)
    if base.shape[1] != queries.shape[1]:
        raise ValueError(f"queries have dimension {queries.shape[1]}, base has {base.shape[1]}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    exact = faiss.IndexFlat(base.shape[1], factory.faiss_metric(index_config.Metric(metric)))
    exact.add(base)
    _, positions = exact.search(queries, min(k, base.shape[0]))
    return np.asarray(positions, dtype=np.int64)


def recall_at_k(found_positions: np.ndarray, true_positions: np.ndarray, k: int) -> float:
    """Mean over queries of |found top-k ∩ true top-k| / k."""
    found = np.asarray(found_positions)
    truth = np.asarray(true_positions)
    if found.ndim != 2 or truth.ndim != 2 or found.shape[0] != truth.shape[0]:
        raise ValueError(f"found {found.shape} and true {truth.shape} positions must be (queries, k) alike")
    if k < 1 or k > truth.shape[1]:
        raise ValueError(f"k must be between 1 and {truth.shape[1]} (columns of the ground truth), got {k}")
    if found.shape[0] == 0:
        raise ValueError("recall needs at least one query")
    hits = 0
    for row_found, row_true in zip(found[:, :k], truth[:, :k], strict=True):
        hits += len(set(row_found[row_found >= 0].tolist()) & set(row_true.tolist()))
    return hits / (k * int(found.shape[0]))


def without_own(neighbors: Iterable[Sequence[T]], own: Sequence[T], k: int) -> list[list[T]]:
    """Each query's first k neighbours other than its own row, shape (queries, <= k).

    A query sampled from the indexed vectors finds itself at distance 0, which would inflate
    recall; so the build searches k + 1 deep and leaves the query's own row out, wherever it
    ranks (or does not). `neighbors` are positions or external ids (a 2-d array or lists);
    `own[q]` is query q's own position or id, in the same space. A row keeps fewer than k
    neighbours only when fewer than k + 1 were found. Raises ValueError when the lengths differ.
    """
    rows = list(neighbors)
    if len(rows) != len(own):
        raise ValueError(f"{len(rows)} answers but {len(own)} own rows: one own row per query is needed")
    return [[found for found in row if found != mine][:k] for row, mine in zip(rows, own)]


def hits_at_k(found: Iterable[Sequence[Hashable]], truth: Iterable[Sequence[Hashable]], k: int) -> int:
    """Sum over queries of |found top-k ∩ true top-k|; recall@k is this over k x queries.

    Works on positions or external ids alike; a missing hit (-1 or None) never counts, since
    the ground truth holds none. Raises ValueError when the two have different lengths.
    """
    found_rows, truth_rows = list(found), list(truth)
    if len(found_rows) != len(truth_rows):
        raise ValueError(f"{len(found_rows)} answers but {len(truth_rows)} ground-truth rows")
    hits = 0
    for row_found, row_true in zip(found_rows, truth_rows):
        true_ids = {value for value in list(row_true)[:k] if value is not None}
        hits += len(true_ids.intersection(list(row_found)[:k]))
    return hits


def single_query_latency(
    index_or_fn: Any, queries: np.ndarray, k: int, *, warmup: int = 10, threads: int | None = 1
) -> LatencyStats:
    """Percentiles of the time to answer one query at a time, on `threads` FAISS threads."""
    search = as_search_fn(index_or_fn)
    queries = _as_matrix("queries", queries)
    timings = np.empty(queries.shape[0], dtype=np.float64)
    with faiss_threads(threads):
        for row in range(min(warmup, queries.shape[0])):
            search(queries[row : row + 1], k)
        for row in range(queries.shape[0]):
            started = time.perf_counter()
            search(queries[row : row + 1], k)
            timings[row] = time.perf_counter() - started
    return percentiles_ms(timings)


def batch_qps(
    index_or_fn: Any, queries: np.ndarray, k: int, *, threads: int | None = None, repeats: int = 3
) -> float:
    """Queries per second answering `queries` as one batch; the best of `repeats` runs."""
    search = as_search_fn(index_or_fn)
    queries = _as_matrix("queries", queries)
    best = float("inf")
    with faiss_threads(threads):
        for _ in range(max(1, repeats)):
            started = time.perf_counter()
            search(queries, k)
            best = min(best, time.perf_counter() - started)
    return float(queries.shape[0] / best) if best > 0 else float("inf")


def memory_bytes(faiss_index: Any) -> int:
    """Bytes of the serialized index: what a serving replica holds in memory for it."""
    return int(faiss.serialize_index(faiss_index).size)


@dataclasses.dataclass(frozen=True)
class EvaluationReport:
    """What the gates look at, for one index on one query sample."""

    k: int
    queries: int
    recall_at_k: float
    latency: LatencyStats
    batch_qps: float
    memory_bytes: int
    vectors: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "queries": self.queries,
            "recall_at_k": self.recall_at_k,
            "p50_latency_ms": self.latency.p50_ms,
            "p90_latency_ms": self.latency.p90_ms,
            "p99_latency_ms": self.latency.p99_ms,
            "batch_qps": self.batch_qps,
            "memory_bytes": self.memory_bytes,
            "vectors": self.vectors,
        }


def evaluate(
    index: Any,
    queries: np.ndarray,
    true_positions: np.ndarray,
    *,
    k: int,
    faiss_index: Any | None = None,
    vectors: int | None = None,
) -> EvaluationReport:
    """Recall@k against `true_positions`, single-query latency, batch QPS and memory of `index`.

    `index` is a FAISSIndex (positions are its insertion order) or a raw faiss.Index; pass
    `faiss_index` for the memory figure when `index` is a plain callable.
    """
    search = as_search_fn(index)
    queries = _as_matrix("queries", queries)
    _, found = search(queries, k)
    recall = recall_at_k(np.asarray(found), true_positions, k)
    latency = single_query_latency(search, queries, k)
    qps = batch_qps(search, queries, k)
    raw = faiss_index if faiss_index is not None else getattr(index, "faiss_index", index)
    return EvaluationReport(
        k=k,
        queries=int(queries.shape[0]),
        recall_at_k=recall,
        latency=latency,
        batch_qps=qps,
        memory_bytes=memory_bytes(raw),
        vectors=int(vectors if vectors is not None else raw.ntotal),
    )
