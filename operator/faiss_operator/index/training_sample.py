"""The vectors an index trains on: a bounded, seeded sample of the input, never the input copied whole.

`factory.plan_build` says how many vectors a type trains on (index/config.py
`training_sample_size`: 256 per centroid, the FAISS wiki's useful maximum, or `train_size`).
The rows are drawn with a seeded generator and sorted, so the same input and seed train the
same index whether it was added whole or in chunks, and they are read from the memory map row
by row, so only the sample itself is ever materialised:

* the sample is the whole input, float32, C-contiguous and not normalised (an IVF of 1M
  vectors trains on 256 x 4,000 > 1M): the memory map itself, no copy at all;
* the sample fits `IN_MEMORY_BYTES`: an array in memory;
* otherwise: a temporary .npy beside the artifact, memory-mapped, so its pages are file-backed
  and a cgroup can write them back and reclaim them instead of killing the build.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from faiss_operator.index import chunks

# A larger sample is spilled to a memory-mapped file (256 MiB: 174k vectors at d=384).
IN_MEMORY_BYTES = 256 << 20
# Rows gathered at a time: a fancy index of a memory map copies the rows it picks, so this
# bounds that temporary (12 MiB at d=384) beside the sample being filled.
GATHER_ROWS = 8192


def sample_rows(count: int, size: int, *, seed: int) -> npt.NDArray[np.int64]:
    """`size` distinct row numbers of 0..count-1, sorted; all rows when size >= count.

    The same draw as `factory.train_index` makes on a whole array, so both paths train alike."""
    if size >= count:
        return np.arange(count, dtype=np.int64)
    rows = np.random.default_rng(seed).choice(count, size=size, replace=False)
    return np.sort(rows).astype(np.int64)


@contextlib.contextmanager
def training_sample(
    vectors: Any, size: int, *, seed: int, normalize: bool, spill_dir: Path,
    in_memory_bytes: int = IN_MEMORY_BYTES, chunk_rows: int = GATHER_ROWS,
) -> Iterator[npt.NDArray[np.float32]]:
    """A float32 (normalised when asked) sample of `size` rows of (n, d) `vectors`, valid inside
    the `with` block; a spilled sample's file is removed when it ends."""
    count, dimension = int(vectors.shape[0]), int(vectors.shape[1])
    rows = sample_rows(count, size, seed=seed)
    whole = len(rows) == count
    if whole and not normalize and _usable_as_is(vectors):
        yield vectors
        return
    nbytes = len(rows) * dimension * np.dtype(np.float32).itemsize
    if nbytes <= in_memory_bytes:
        yield _gather(vectors, rows, normalize=normalize, chunk_rows=chunk_rows, out=None)
        return
    with tempfile.TemporaryDirectory(prefix=".training-sample-", dir=spill_dir) as directory:
        spilled = np.lib.format.open_memmap(
            Path(directory) / "sample.npy", mode="w+", dtype=np.float32, shape=(len(rows), dimension)
        )
        _gather(vectors, rows, normalize=normalize, chunk_rows=chunk_rows, out=spilled)
        spilled.flush()  # written back: clean pages the kernel may drop
        try:
            yield spilled
        finally:
            del spilled


def _usable_as_is(vectors: Any) -> bool:
    return bool(vectors.dtype == np.float32 and vectors.flags["C_CONTIGUOUS"])


def _gather(
    vectors: Any, rows: npt.NDArray[np.int64], *, normalize: bool, chunk_rows: int,
    out: npt.NDArray[np.float32] | None,
) -> npt.NDArray[np.float32]:
    """The rows of `vectors`, read a chunk of row numbers at a time (a fancy index of a memory
    map reads only those rows)."""
    target = np.empty((len(rows), vectors.shape[1]), dtype=np.float32) if out is None else out
    for first in range(0, len(rows), chunk_rows):
        picked = rows[first : first + chunk_rows]
        target[first : first + len(picked)] = chunks.as_float32(vectors[picked], normalize=normalize)
    return target
