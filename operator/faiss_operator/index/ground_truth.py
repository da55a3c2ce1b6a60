"""Exact nearest neighbours of the evaluation queries over a base too large to copy: chunk by chunk.

The recall a revision is gated on is measured against exact search over the whole input. An
`IndexFlat` holding the input is a second full-size copy of it (and a float16 or normalised
input one more); here the base is read one chunk at a time (index/chunks.py), each chunk
searched exactly with `faiss.knn`, and the running top-k of every query merged in a
`faiss.ResultHeap`. The memory is the chunk plus (queries x k) results, whatever the base.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

from faiss_operator.index import chunks, factory
from faiss_operator.index import config as index_config

# Called after each chunk with (rows searched, all rows): the build's progress line.
ProgressFn = Callable[[int, int], None]


def exact_neighbors(
    base: Any,
    queries: npt.NDArray[np.float32],
    k: int,
    metric: index_config.Metric | str = index_config.Metric.L2,
    *,
    normalize: bool = False,
    chunk_rows: int = chunks.CHUNK_ROWS,
    on_chunk: ProgressFn | None = None,
) -> npt.NDArray[np.int64]:
    """Rows of (n, d) `base` (a memory map, float32 or float16) nearest to each query, (q, min(k, n)).

    `normalize` L2-normalises the base's chunks and the queries first (cosine). Equal to
    `evaluation.exact_neighbors` on the whole base, up to the order of exactly tied distances."""
    count, dimension = int(base.shape[0]), int(base.shape[1])
    probes = chunks.as_float32(queries, normalize=normalize)
    if probes.ndim != 2 or probes.shape[0] == 0 or probes.shape[1] != dimension:
        raise ValueError(f"queries: expected a non-empty (q, {dimension}) array, got shape {probes.shape}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if count == 0:
        raise ValueError("the base holds no vectors")
    depth = min(k, count)
    faiss_metric = factory.faiss_metric(index_config.Metric(metric))
    heap = faiss.ResultHeap(len(probes), depth, keep_max=faiss_metric == faiss.METRIC_INNER_PRODUCT)
    for first, chunk in chunks.float32_chunks(base, normalize=normalize, chunk_rows=chunk_rows):
        distances, positions = faiss.knn(probes, chunk, min(depth, len(chunk)), metric=faiss_metric)
        heap.add_result(distances, positions + first)
        if on_chunk is not None:
            on_chunk(first + len(chunk), count)
    heap.finalize()
    return np.asarray(heap.I, dtype=np.int64)
