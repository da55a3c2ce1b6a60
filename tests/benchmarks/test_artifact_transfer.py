"""The artifact transfer benchmark runs end to end against a real S3 server and prints its table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests import s3_store

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "artifact_transfer.py"


@pytest.mark.slow
def test_quick_run_prints_the_project_beside_boto3_alone(tmp_path: Path) -> None:
    s3_store.require_binary()
    finished = subprocess.run(
        [sys.executable, str(SCRIPT), "--vectors", "2000", "--dimension", "16", "--rounds", "1",
         "--workdir", str(tmp_path)], capture_output=True, text=True, timeout=300,
    )
    assert finished.returncode == 0, finished.stderr
    rows = [line.split(" | ") for line in finished.stdout.splitlines() if line.startswith("| ") and "MB/s" not in line]
    assert [row[0].strip("| ") for row in rows] == ["upload", "download"]
    for row in rows:
        ours, plain, ratio = float(row[1]), float(row[2]), float(row[3].strip(" |"))
        assert ours > 0 and plain > 0 and ratio == pytest.approx(ours / plain, rel=0.1, abs=0.02)
    assert list(tmp_path.iterdir()) == []  # the store's files and the artifact are removed
