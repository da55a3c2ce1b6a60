"""Raw FAISS, measured the way the serving benchmarks compare the server against it.

Single-query latency on one thread (after a warm-up), then batch QPS on all threads, on a
`faiss.Index` read straight from disk: no project code between the caller and FAISS.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

BATCH_REPEATS = 3


def measure(index: Any, queries: np.ndarray, k: int, *, warmup: int) -> dict[str, float]:
    """{"p50", "p99"} single-query milliseconds on one thread, {"qps"} batched on all threads and
    {"cpu_us"}: the process's CPU (all threads) per query of that batched search, in microseconds."""
    import faiss

    faiss.omp_set_num_threads(1)
    for query in queries[:warmup]:
        index.search(query[None, :], k)
    times = []
    for query in queries:
        started = time.perf_counter()
        index.search(query[None, :], k)
        times.append((time.perf_counter() - started) * 1000.0)
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    index.search(queries, k)
    batch = np.concatenate([queries] * BATCH_REPEATS)
    started, cpu_started = time.perf_counter(), time.process_time()
    index.search(batch, k)
    qps = len(batch) / (time.perf_counter() - started)
    cpu_us = (time.process_time() - cpu_started) / len(batch) * 1e6
    return {"p50": float(np.percentile(times, 50)), "p99": float(np.percentile(times, 99)), "qps": qps, "cpu_us": cpu_us}
