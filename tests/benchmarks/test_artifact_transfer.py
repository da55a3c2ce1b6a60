"""The artifact transfer benchmark runs end to end against a real S3 server and prints its table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests import s3_store

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "artifact_transfer.py"


@pytest.mark.slow
def test_quick_run_prints_the_project_beside_boto3_alone_and_a_raw_copy(tmp_path: Path) -> None:
    s3_store.require_binary()
    work, cache = tmp_path / "work", tmp_path / "cache"
    work.mkdir()
    finished = subprocess.run(
        [sys.executable, str(SCRIPT), "--vectors", "2000", "--dimension", "16", "--rounds", "1",
         "--workdir", str(work), "--cache", str(cache)], capture_output=True, text=True, timeout=300,
    )
    assert finished.returncode == 0, finished.stderr
    rows = [line.split(" | ") for line in finished.stdout.splitlines() if line.startswith("| ") and "MB/s" not in line]
    assert [row[0].strip("| ") for row in rows] == ["upload", "download"]
    for row in rows:
        ours, plain, raw = float(row[1]), float(row[2]), float(row[3])
        to_plain, to_raw = float(row[4]), float(row[5].strip(" |"))
        assert ours > 0 and plain > 0 and raw > 0
        assert to_plain == pytest.approx(ours / plain, rel=0.1, abs=0.02)
        assert to_raw == pytest.approx(ours / raw, rel=0.1, abs=0.02)
    assert list(work.iterdir()) == []  # the store's files and the downloads are removed
    assert [p.name for p in cache.iterdir()] == ["artifact-hnsw32-2000x16"]  # the built artifact is kept
