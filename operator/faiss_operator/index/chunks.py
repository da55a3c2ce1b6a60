"""Reading an (n, d) input a chunk of rows at a time, as the float32 (and normalised) vectors FAISS takes.

A build's input is a memory map of up to tens of millions of vectors, float32 or float16, maybe
to be L2-normalised. Converting or normalising it whole makes a second full-size copy in
anonymous memory, which a build Job's memory limit must then hold on top of the index; so every
pass over the input (adding, ground truth, data checks) goes through `float32_chunks`, which
holds one chunk at a time. A float32 C-contiguous memory map is passed through as a view of
its pages (file-backed: the kernel can drop them under a cgroup limit), not copied.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from faiss_operator.index import normalization

# 65,536 rows: 96 MiB of float32 at d=384, large enough for FAISS's batched kernels.
CHUNK_ROWS = 65_536


def as_float32(vectors: Any, *, normalize: bool) -> npt.NDArray[np.float32]:
    """`vectors` (a chunk or a small sample) as C-contiguous float32, L2-normalised when asked; a
    view of the input when it already is float32 C-contiguous and no normalising is asked."""
    array = np.ascontiguousarray(vectors, dtype=np.float32)
    return normalization.l2_normalized(array) if normalize else array


def float32_chunks(
    vectors: Any, *, normalize: bool = False, chunk_rows: int = CHUNK_ROWS, start: int = 0, stop: int | None = None
) -> Iterator[tuple[int, npt.NDArray[np.float32]]]:
    """(first row, chunk) over rows start..stop of (n, d) `vectors`, each chunk at most
    `chunk_rows` rows of float32 (normalised when asked). Chunk boundaries do not change a
    row's value: conversion and normalisation are per row."""
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    end = int(vectors.shape[0]) if stop is None else stop
    for first in range(start, end, chunk_rows):
        yield first, as_float32(vectors[first : min(end, first + chunk_rows)], normalize=normalize)


def chunk_bytes(dimension: int, chunk_rows: int = CHUNK_ROWS) -> int:
    """Anonymous memory of one converted chunk (the memory formula's "chunk" term)."""
    return chunk_rows * dimension * np.dtype(np.float32).itemsize
