"""Data a metric cannot rank well, counted before it is indexed: one rule, in one place.

The rule (README "Degenerate data"), for the library, the build and `serve` alike:

* **(near-)zero norms under cosine** (`normalize`): a vector whose L2 norm is below
  NEAR_ZERO_NORM has no reliable direction (normalising it amplifies rounding noise into a unit
  vector that ranks at random), so it is refused, naming how many and the first row. Without
  `normalize` such a vector is a point like any other: counted only.
* **exact duplicates**: indexed as given (each keeps its own id; a search returns them side by
  side), counted, and a build that has them passes with a Warning Event.
* **constant dimensions** (the same value in every vector): they carry no information but do no
  harm to ranking; counted, and the build passes with a Warning Event. With fewer than two
  vectors no dimension can vary, so none is counted as constant.
* **float16 overflow**: a float16 source holds at most ±65504, and a value beyond became Inf when
  it was written; Inf and NaN are refused by the readers, whose message says so for float16.

Counting reads the vectors chunk by chunk, so a float16 memory map is never converted whole.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import numpy.typing as npt

# Below this L2 norm a vector has no direction worth normalising (float32 keeps ~7 digits; the
# embeddings this library indexes have norms around 1 or more).
NEAR_ZERO_NORM = 1e-6
# The row hash widens a chunk to 8-byte words twice over (16 bytes per value): 8,192 rows of 384
# dimensions is 48 MiB at a time; 100,000 rows was 600 MiB, more than the rest of a build's headroom.
CHUNK_ROWS = 8192
# Multipliers of a 64-bit row hash (fixed: the same data gives the same count on every run).
_HASH_SEED = 20_241_207


@dataclasses.dataclass(frozen=True)
class DataQuality:
    """Counts of degenerate vectors and dimensions; `first_near_zero` is a row number or None."""

    vectors: int
    near_zero_norm_vectors: int = 0
    first_near_zero: int | None = None
    duplicate_vectors: int = 0
    constant_dimensions: int = 0

    def report(self) -> dict[str, int]:
        """The counts for the build report and its termination message."""
        return {
            "near_zero_norm_vectors": self.near_zero_norm_vectors,
            "duplicate_vectors": self.duplicate_vectors,
            "constant_dimensions": self.constant_dimensions,
        }

    def warnings(self) -> list[str]:
        """What a build that passes with this data should say (empty when nothing is degenerate)."""
        said = []
        if self.duplicate_vectors:
            said.append(f"{self.duplicate_vectors} of {self.vectors} vectors repeat an earlier vector exactly")
        if self.constant_dimensions:
            said.append(f"{self.constant_dimensions} dimensions hold the same value in every vector")
        if self.near_zero_norm_vectors:
            said.append(f"{self.near_zero_norm_vectors} vectors have an L2 norm below {NEAR_ZERO_NORM:g}")
        return said


def near_zero_rows(vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.intp]:
    """Row numbers of vectors whose L2 norm is below NEAR_ZERO_NORM (all-zero ones included)."""
    return np.flatnonzero(_norms(np.asarray(vectors, dtype=np.float32)) < NEAR_ZERO_NORM)


def inspect(vectors: Any, *, chunk_rows: int = CHUNK_ROWS) -> DataQuality:
    """Count the degenerate data of (n, d) `vectors` (float32 or float16, possibly memory-mapped)."""
    count, dimension = int(vectors.shape[0]), int(vectors.shape[1])
    multipliers = np.random.default_rng(_HASH_SEED).integers(1, 2**63, size=dimension, dtype=np.uint64) | np.uint64(1)
    hashes = np.empty(count, dtype=np.uint64)
    low = np.full(dimension, np.inf, dtype=np.float32)
    high = np.full(dimension, -np.inf, dtype=np.float32)
    near_zero = 0
    first: int | None = None
    for start in range(0, count, chunk_rows):
        chunk = np.ascontiguousarray(vectors[start : start + chunk_rows], dtype=np.float32)
        small = np.flatnonzero(_norms(chunk) < NEAR_ZERO_NORM)
        if small.size and first is None:
            first = start + int(small[0])
        near_zero += int(small.size)
        # +0.0 and -0.0 are the same value: add 0.0 so that their bit patterns are too.
        bits = (chunk + np.float32(0.0)).view(np.uint32).astype(np.uint64)
        with np.errstate(over="ignore"):
            hashes[start : start + len(chunk)] = (bits * multipliers).sum(axis=1, dtype=np.uint64)
        np.minimum(low, chunk.min(axis=0), out=low)
        np.maximum(high, chunk.max(axis=0), out=high)
    duplicates = _repeats(hashes)
    constant = int(np.count_nonzero(low == high)) if count > 1 else 0
    return DataQuality(
        vectors=count, near_zero_norm_vectors=near_zero, first_near_zero=first,
        duplicate_vectors=duplicates, constant_dimensions=constant,
    )


def _repeats(hashes: npt.NDArray[np.uint64]) -> int:
    """How many entries equal an earlier one; sorts `hashes` in place (n bytes more, for the mask).

    Not `np.unique`: since numpy 2.3 it counts through a hash set on the C heap, ~64 bytes per
    entry at its peak, half of which glibc keeps after the set is freed (measured on 5M x 384:
    inspect rose 320 MiB and still held 155 MiB after it returned, through the whole build)."""
    hashes.sort()
    return int(np.count_nonzero(hashes[1:] == hashes[:-1]))


def _norms(chunk: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    # float64 accumulation: a float32 sum of squares underflows to 0 for norms below ~1e-19.
    squares: npt.NDArray[np.float64] = np.einsum("ij,ij->i", chunk, chunk, dtype=np.float64)
    return np.sqrt(squares)
