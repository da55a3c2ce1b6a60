from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from e2e.harness.waiting import wait_for
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


# -- a build killed for memory still says how large its input was -----------------------------


def test_a_build_killed_after_reading_its_input_leaves_the_measured_input_in_its_termination_log(
    tmp_path: Path,
) -> None:
    """The kernel's OOM kill is a SIGKILL: nothing runs after it, so the measurement must already
    be in the termination log (the kubelet reads that file whatever ended the container)."""
    rows, dimension = 60_000, 64
    source = tmp_path / "v.npy"
    np.save(source, np.random.default_rng(1).standard_normal((rows, dimension)).astype(np.float32))
    out = tmp_path / "out"
    log = tmp_path / "termination-log"
    argv = [sys.executable, "-m", "faiss_operator.cli", "build", "--source", str(source), "--out", str(out),
            "--termination-log", str(log), "--index-type", "HNSW", "--revision", "r1"]  # fmt: skip
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: log.exists() and '"status":"Running"' in log.read_text(), 60, "the measured input")
        process.kill()
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL, "the build finished before it could be killed"
    left = json.loads(log.read_text())
    # Each progress line after the input was measured adds where the build was and its peak so far.
    progressed = {key: left.pop(key) for key in ("build_phase", "percent", "peak_anon_bytes") if key in left}
    assert left == {
        "status": "Running", "phase": "build", "revision": "r1", "source": str(source),
        "vectors": rows, "dimension": dimension, "input_bytes": rows * dimension * 4, "metadata_records": 0,
    }  # fmt: skip
    if progressed:
        assert progressed["build_phase"] in ("train", "add", "truth", "evaluate", "write")
        assert 0 <= progressed["percent"] <= 100 and progressed["peak_anon_bytes"] > 20 << 20
