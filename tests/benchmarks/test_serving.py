"""The serving benchmark runs end to end: raw FAISS and the real server measured in one run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "serving.py"


@pytest.mark.slow
def test_quick_run_prints_raw_faiss_beside_the_server_with_ratios(tmp_path: Path) -> None:
    finished = subprocess.run(
        [sys.executable, str(SCRIPT), "--vectors", "2000", "--requests", "100", "--rounds", "1",
         "--drivers", "python", "--forms", "json", "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )

    assert finished.returncode == 0, finished.stderr[-2000:]
    rows = {line.split(" | ")[0].strip("| "): line for line in finished.stdout.splitlines() if line.startswith("| ")}
    p99 = rows["p99 ms, concurrency 1"]
    qps = rows["QPS, concurrency 32 vs raw batched"]
    assert re.search(r"\| \d+\.\d+ \| \d+\.\d+ \(\d+\.\d+x\)", p99), p99
    assert re.search(r"\| \d+ \| \d+ \(\d+\.\d+x\)", qps), qps
