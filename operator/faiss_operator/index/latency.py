"""A rolling window of recent search times, for the live p50/p90/p99 in `get_stats()`.

The serving pods report these percentiles; a bounded window keeps the figures about the present
and the memory constant, and a lock keeps them right when requests run on several threads.
"""

from __future__ import annotations

import collections
import threading

from faiss_operator.index import evaluation

DEFAULT_WINDOW = 1000


class LatencyWindow:
    """The durations (seconds) of the last `size` search calls."""

    def __init__(self, size: int = DEFAULT_WINDOW) -> None:
        if size < 1:
            raise ValueError(f"latency window size must be >= 1, got {size}")
        self._samples: collections.deque[float] = collections.deque(maxlen=size)
        self._lock = threading.Lock()

    def record(self, seconds: float) -> None:
        with self._lock:
            self._samples.append(seconds)

    def stats(self) -> evaluation.LatencyStats:
        with self._lock:
            samples = list(self._samples)
        return evaluation.percentiles_ms(samples)

    def clear(self) -> None:
        with self._lock:
            self._samples.clear()
