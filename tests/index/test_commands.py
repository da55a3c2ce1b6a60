"""The `tune` and `config` subcommands, through the real `faiss-operator` entry point."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from faiss_operator import cli
from faiss_operator.index import TuningReport


def test_config_prints_values_and_sources(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAISS_CONFIG_EF_SEARCH", "99")
    monkeypatch.delenv("FAISS_CONFIG_FILE", raising=False)
    assert cli.main(["config", "--set", "m=16"]) == 0
    out = capsys.readouterr().out
    assert "ef_search = 99  (env:FAISS_CONFIG_EF_SEARCH)" in out
    assert "m = 16  (argument)" in out


def test_config_json_reads_a_v08_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "old.yaml"
    path.write_text("nlist: 64\nnprobe: 4\n")
    assert cli.main(["config", "--config-file", str(path), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["index_type"] == "IVF"
    assert shown["config"]["nlist"] == 64
    assert shown["sources"]["nprobe"] == f"file:{path}"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["config", "--index-type", "IVF", "--set", "m=3"], "config.m: not a parameter of index type 'IVF'"),
        (["config", "--set", "oops"], "expected KEY=VALUE"),
    ],
)
def test_config_errors_exit_2_with_the_reason(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


def test_tune_on_a_npy_file_writes_a_usable_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = np.random.default_rng(0).normal(size=(600, 16)).astype(np.float32)
    np.save(tmp_path / "data.npy", data)
    output = tmp_path / "report.json"
    argv = ["tune", "--data", str(tmp_path / "data.npy"), "--types", "Flat,IVF", "--num-queries", "20",
            "--target-recall", "0.5", "--output", str(output)]
    assert cli.main(argv) == 0
    table = capsys.readouterr().out
    assert "580 vectors x 16-d (given)" in table
    report = TuningReport.from_json(output.read_text())
    assert report.best is not None
    assert {r.index_type for r in report} == {"Flat", "IVF"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["tune", "--data", "/nonexistent.npy"], "cannot read a .npy array"),
        (["tune", "--types", "HNSW,Bogus", "--sample-size", "100", "--num-queries", "10"], "unknown index type 'Bogus'"),
        (["tune", "--target-recall", "2"], "min_recall"),
    ],
)
def test_tune_errors_exit_2_with_the_reason(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err
