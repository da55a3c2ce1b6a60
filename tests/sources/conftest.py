"""Generated input files of each format, small enough to write per test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def write_fvecs(path: Path, vectors: np.ndarray) -> Path:
    n, d = vectors.shape
    rows = np.empty((n, d + 1), dtype=np.int32)
    rows[:, 0] = d
    rows[:, 1:] = vectors.astype(np.float32).view(np.int32)
    rows.tofile(path)
    return path


@pytest.fixture
def vectors() -> np.ndarray:
    return np.random.default_rng(7).standard_normal((50, 8)).astype(np.float32)


from tests.s3_store import bucket, object_store, private_object_store, s3_env  # noqa: E402,F401  (fixtures)
