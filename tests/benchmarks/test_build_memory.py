"""The build-memory benchmark runs the real CLI beside raw FAISS and prints whole table rows."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "build_memory.py"


def _run_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, index_type: str, *options: str) -> dict[str, Any]:
    """The benchmark's one result for 3,000 vectors of `index_type`, its data under tmp_path."""
    results = tmp_path / "results.jsonl"
    monkeypatch.setenv("HOME", str(tmp_path))  # the generated data and logs go to ~/.cache
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), "--vectors", "3000", "--types", index_type, "--threads", "1",
                                      *options, "--results", str(results)])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(SCRIPT), run_name="__main__")
    assert exit_info.value.code == 0
    (line,) = results.read_text().splitlines()
    result: dict[str, Any] = json.loads(line)
    return result


def test_raw_faiss_builds_what_the_project_builds_with_its_defaults() -> None:
    module = runpy.run_path(str(SCRIPT))
    assert module["raw_arguments"]("IVF", 1_000_000) == ["--factory", "IVF4000,Flat", "--train-size", "1000000"]
    assert module["raw_arguments"]("HNSW", 1_000_000) == ["--factory", "HNSW32", "--ef-construction", "200"]
    assert module["raw_arguments"]("OPQ+HNSW", 1_000_000) == [
        "--factory", "HNSW16_SQ6", "--ef-construction", "200", "--train-size", "65536",
    ]


@pytest.mark.slow
def test_a_small_ivf_run_measures_both_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    result = _run_once(tmp_path, monkeypatch, "IVF", "--concurrent")
    assert result["index_type"] == "IVF" and result["vectors"] == 3000 and result["dimension"] == 384
    # Both saved the same index type and size: IVF-Flat holds 4*d + 8 bytes per vector.
    assert result["index_bytes"] == pytest.approx(result["raw_index_bytes"], rel=0.01)
    assert result["index_bytes"] > 3000 * (4 * 384 + 8)
    # Each process holds at least numpy and FAISS (~20 MiB), sampled from outside and, for the
    # builder, also reported from inside.
    assert min(result["raw_peak_anon"], result["peak_anon"], result["reported_peak_anon"]) > 15 << 20
    data = np.load(tmp_path / ".cache" / "faiss-operator" / "bench" / "normalized-3000x384-20261207.npy", mmap_mode="r")
    assert np.allclose(np.linalg.norm(data, axis=1), 1, atol=1e-5)
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| IVF | 3,000 |")]
    assert len(rows) == 2  # printed as it finished, then in the final table


@pytest.mark.slow
def test_without_raw_measures_the_build_alone_and_prints_dashes_for_raw_faiss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    result = _run_once(tmp_path, monkeypatch, "Flat", "--without-raw")
    assert 3000 * 4 * 384 < result["index_bytes"] < 3000 * 4 * 384 + 4096  # Flat: the codes and a header
    assert result["peak_anon"] > 15 << 20 and result["reported_peak_anon"] > 15 << 20
    assert [result[key] for key in ("raw_index_bytes", "raw_peak_anon", "raw_build_seconds", "raw_wall_seconds")] == [
        None, None, None, None,
    ]
    assert not list((tmp_path / ".cache" / "faiss-operator" / "bench" / "logs").glob("*.raw.log"))
    (row, _) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| Flat | 3,000 |")]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[4] == "-" and cells[7] == "-" and cells[8] == "-"  # raw peak, raw seconds, ratio
