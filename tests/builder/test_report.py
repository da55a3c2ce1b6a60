from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from faiss_operator import cli
from faiss_operator.builder import report
from tests.builder.conftest import build_args


def test_a_small_report_is_unchanged() -> None:
    document = {"status": "Succeeded", "recall": 0.98, "config": {"m": 32}}
    assert json.loads(report.compact(document)) == document


def test_optional_fields_go_first_then_the_error_is_shortened() -> None:
    document = {
        "status": "Failed", "exit_code": 17, "config": {f"k{i}": "x" * 50 for i in range(100)},
        "source": "s" * 3000, "error": "e" * 9000, "artifact": "/artifacts/rev",
    }
    text = report.compact(document)
    assert len(text.encode()) <= 4096
    compacted = json.loads(text)
    assert compacted["status"] == "Failed" and compacted["exit_code"] == 17
    assert "config" not in compacted and compacted["error"].endswith("...")


def test_multibyte_error_text_still_fits() -> None:
    text = report.compact({"status": "Failed", "error": "é" * 5000})
    assert len(text.encode()) <= 4096
    json.loads(text)


def test_unwritable_termination_log_does_not_raise(tmp_path: object) -> None:
    report.write_termination_log(Path("/nonexistent-dir/termination-log"), {"status": "x"})


# -- where the report goes without --termination-log -------------------------------------------

def test_the_kubelet_file_is_the_default_only_inside_a_pod(tmp_path: Path) -> None:
    kubelet_file = tmp_path / "termination-log"
    in_pod = {"KUBERNETES_SERVICE_HOST": "10.96.0.1"}
    assert report.default_termination_log(in_pod, kubelet_file) == kubelet_file  # creatable
    kubelet_file.write_text("")
    assert report.default_termination_log(in_pod, kubelet_file) == kubelet_file  # writable
    assert report.default_termination_log({}, kubelet_file) is None  # by hand
    assert report.default_termination_log(in_pod, tmp_path / "absent-dir" / "log") is None
    if os.geteuid() != 0:  # root may write anywhere
        kubelet_file.chmod(0o400)
        assert report.default_termination_log(in_pod, kubelet_file) is None


def _argv_without_termination_log(inputs: Path, out: Path) -> list[str]:
    argv = build_args(inputs / "v.npy", out, "--index-type", "Flat")
    at = argv.index("--termination-log")
    return argv[:at] + argv[at + 2:]


def test_build_by_hand_writes_no_termination_log(
    inputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubelet_file = tmp_path / "dev" / "termination-log"
    kubelet_file.parent.mkdir()
    monkeypatch.setattr(report, "DEFAULT_TERMINATION_LOG", str(kubelet_file))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    out = tmp_path / "out" / "rev"
    assert cli.main(_argv_without_termination_log(inputs, out)) == 0
    assert not kubelet_file.exists()
    assert [p.name for p in out.parent.iterdir()] == ["rev"]


def test_build_in_a_pod_writes_the_kubelet_file_by_default(
    inputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubelet_file = tmp_path / "dev" / "termination-log"
    kubelet_file.parent.mkdir()
    kubelet_file.write_text("")
    monkeypatch.setattr(report, "DEFAULT_TERMINATION_LOG", str(kubelet_file))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    assert cli.main(_argv_without_termination_log(inputs, tmp_path / "out" / "rev")) == 0
    assert json.loads(kubelet_file.read_text())["status"] == "Succeeded"
