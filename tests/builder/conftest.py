"""Small generated inputs for builds that finish in about a second."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

DIMENSION = 32
COUNT = 3000


@pytest.fixture
def vectors() -> np.ndarray:
    rng = np.random.default_rng(3)
    centers = rng.standard_normal((20, DIMENSION)).astype(np.float32)
    return (centers[rng.integers(0, 20, COUNT)] + 0.3 * rng.standard_normal((COUNT, DIMENSION))).astype(np.float32)


@pytest.fixture
def inputs(tmp_path: Path, vectors: np.ndarray) -> Path:
    """A directory with v.npy, ids.txt and meta.jsonl; artifacts go to tmp_path/'out'."""
    source = tmp_path / "in"
    source.mkdir()
    np.save(source / "v.npy", vectors)
    (source / "ids.txt").write_text("".join(f"doc-{i}\n" for i in range(COUNT)))
    (source / "meta.jsonl").write_text("".join(json.dumps({"id": f"doc-{i}", "n": i}) + "\n" for i in range(COUNT)))
    return source


def build_args(source: Path | str, out: Path, *extra: str) -> list[str]:
    return [
        "build", "--source", str(source), "--out", str(out), "--termination-log", str(out.parent / "termination-log"),
        "--eval-queries", "100", *extra,
    ]


def leftovers(parent: Path) -> list[str]:
    """Temporary build directories left beside the artifact (there must be none)."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


from tests.s3_store import bucket, object_store, private_object_store, s3_env  # noqa: E402,F401  (fixtures)
