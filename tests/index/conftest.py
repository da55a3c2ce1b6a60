"""Small generated data shared by the index tests, and FAISS limited to one thread.

One thread keeps the tests quick on a shared 2-core machine (OpenMP spins when cores are busy)
and makes FAISS results deterministic.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from faiss_operator.index import evaluation, synthetic

DIMENSION = 32


@pytest.fixture(autouse=True, scope="session")
def _one_faiss_thread() -> Iterator[None]:
    with evaluation.faiss_threads(1):
        yield


@pytest.fixture(scope="session")
def dataset() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(base 4000 x 32, queries 100 x 32, true top-10 positions), L2-normalised."""
    vectors = synthetic.clustered_vectors(4100, DIMENSION, seed=7)
    base, queries = synthetic.split_queries(vectors, 100, seed=7)
    return base, queries, evaluation.exact_neighbors(base, queries, 10)


@pytest.fixture
def small() -> np.ndarray:
    return synthetic.clustered_vectors(300, DIMENSION, seed=3)
