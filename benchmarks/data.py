"""Benchmark data: generated clustered vectors by default, or a cached .npy of real embeddings.

Kept apart from the benchmark so each script that needs a base set and held-out queries gets
them the same way (same seed, same split) and so numbers from different scripts compare.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from faiss_operator.index import synthetic

SEED = 20260101
# Chosen so that recall resembles sentence embeddings at 20k: IVF nprobe 10 ~0.93, HNSW32 ef 32 ~0.98.
GENERATED_SHAPE = {"noise": 0.6, "rank": 32, "center_scale": 0.5}


@dataclasses.dataclass(frozen=True)
class Dataset:
    base: np.ndarray
    queries: np.ndarray
    description: str


def load(path: Path | None, *, n: int, queries: int, dimension: int = 384) -> Dataset:
    """`n` base vectors and `queries` held-out queries, from `path` (.npy) or generated."""
    if path is None:
        vectors = synthetic.clustered_vectors(
            n + queries, dimension, clusters=max(8, (n + queries) // 40), seed=SEED, **GENERATED_SHAPE
        )
        base, held_out = synthetic.split_queries(vectors, queries, seed=SEED)
        return Dataset(base, held_out, f"generated clustered {dimension}-d (L2-normalised)")
    array = np.load(path, mmap_mode="r")
    if array.ndim != 2:
        raise SystemExit(f"{path}: expected a 2-d array, got shape {array.shape}")
    total = array.shape[0]
    if n + queries > total:
        raise SystemExit(f"{path}: has {total} vectors, fewer than --n {n} + --queries {queries}")
    rows = np.random.default_rng(SEED).permutation(total)[: n + queries]
    chosen = np.ascontiguousarray(array[np.sort(rows)], dtype=np.float32)
    base, held_out = synthetic.split_queries(chosen, queries, seed=SEED)
    return Dataset(base, held_out, f"{path.name}: {n} of {total} vectors, {array.shape[1]}-d")
