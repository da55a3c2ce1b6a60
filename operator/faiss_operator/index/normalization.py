"""L2 normalisation of vectors (cosine similarity = InnerProduct on normalized vectors): one home.

The index normalizes what it adds and searches, the build and the tuner normalize the base and
queries of their exact ground truth; all three use this function, so the exact answer and the
index see bit-identical vectors.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

CHUNK_ROWS = 100_000


def zero_rows(vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.intp]:
    """Row numbers of all-zero vectors, which have no direction to normalize."""
    return np.flatnonzero(~np.any(vectors, axis=1))


def l2_normalized(vectors: Any, *, chunk_rows: int = CHUNK_ROWS) -> npt.NDArray[np.float32]:
    """An L2-normalized float32 copy of (n, d) `vectors`, made chunk by chunk so that a float16
    memory map is never converted whole; an all-zero row stays zero (callers that cannot accept
    one refuse it first with `zero_rows`). The result is a full-size copy: for a build's input use
    index/chunks.py, which normalises one chunk at a time."""
    out = np.empty(vectors.shape, dtype=np.float32)
    for start in range(0, len(vectors), chunk_rows):
        chunk = np.asarray(vectors[start : start + chunk_rows], dtype=np.float32)
        norms = np.linalg.norm(chunk, axis=1, keepdims=True)
        out[start : start + len(chunk)] = chunk / np.where(norms == 0, np.float32(1), norms)
    return out
