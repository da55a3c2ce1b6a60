"""The index-type benchmark runs end to end and prints its table, raw FAISS beside the library."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "index_types.py"


@pytest.mark.slow
def test_quick_run_prints_raw_and_library_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = np.random.default_rng(0).normal(size=(1500, 32)).astype(np.float32)
    np.save(tmp_path / "vectors.npy", data)
    monkeypatch.setattr(
        sys, "argv", [str(SCRIPT), "--data", str(tmp_path / "vectors.npy"), "--n", "1200", "--queries", "50"]
    )
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(SCRIPT), run_name="__main__")
    assert exit_info.value.code == 0
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    labels = {line.split(" | ")[0].strip("| ") for line in table[1:]}
    assert {"Flat (exact)", "IVF nprobe=10", "HNSW32 ef_search=32", "OPQ+HNSW (HNSW16_SQ6) ef_search=64"} <= labels
    assert sum(" raw faiss " in line for line in table) == sum(" FAISSIndex " in line for line in table) == 7
