"""Generated embeddings for tests, the tuner's default sample and the benchmarks.

Uniform random vectors make every index look bad and well-separated blobs make every index look
perfect; text embeddings sit between the two: clustered, with most variance in a few directions.
The generator imitates that (a Gaussian mixture whose points vary along a low-rank subspace per
cluster, plus isotropic noise, L2-normalised), so recall figures on it are neither trivial nor
hopeless. Real embeddings remain the reference (see benchmarks/embed_wordnet.py).
"""

from __future__ import annotations

import numpy as np

DEFAULT_SEED = 1234


def clustered_vectors(
    n: int,
    dimension: int = 384,
    *,
    clusters: int | None = None,
    rank: int = 24,
    noise: float = 0.35,
    center_scale: float = 1.0,
    normalize: bool = True,
    seed: int = DEFAULT_SEED,
) -> np.ndarray:
    """`n` float32 vectors of `dimension` drawn from a low-rank Gaussian mixture."""
    if n < 1 or dimension < 1:
        raise ValueError(f"need n >= 1 and dimension >= 1, got n={n}, dimension={dimension}")
    rng = np.random.default_rng(seed)
    count = clusters if clusters is not None else max(8, int(np.sqrt(n)))
    rank = min(rank, dimension)
    centers = rng.normal(scale=center_scale, size=(count, dimension)).astype(np.float32)
    bases = rng.normal(size=(count, rank, dimension)).astype(np.float32) / np.sqrt(rank)
    out = np.empty((n, dimension), dtype=np.float32)
    chunk = 65536
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        members = rng.integers(0, count, size=stop - start)
        coefficients = rng.normal(size=(stop - start, rank)).astype(np.float32)
        spread = np.einsum("nr,nrd->nd", coefficients, bases[members])
        jitter = rng.normal(scale=noise, size=(stop - start, dimension)).astype(np.float32)
        out[start:stop] = centers[members] + spread + jitter
    if normalize:
        out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def split_queries(vectors: np.ndarray, queries: int, *, seed: int = DEFAULT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """(base, held-out queries): `queries` random rows removed from `vectors`."""
    if not 0 < queries < vectors.shape[0]:
        raise ValueError(f"queries must be between 1 and {vectors.shape[0] - 1}, got {queries}")
    rng = np.random.default_rng(seed + 1)
    chosen = np.zeros(vectors.shape[0], dtype=bool)
    chosen[rng.choice(vectors.shape[0], size=queries, replace=False)] = True
    return np.ascontiguousarray(vectors[~chosen]), np.ascontiguousarray(vectors[chosen])
