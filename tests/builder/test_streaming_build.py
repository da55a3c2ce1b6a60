"""The build streams: progress through training and adding, chunked adds that build the same index
as adding the whole converted array, a peak anonymous memory in the report, and no full copy."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pytest

from faiss_operator import cli
from faiss_operator.builder import pipeline, report as reports
from faiss_operator.contract import build_report
from faiss_operator.index import FAISSIndex, evaluation
from tests.builder.conftest import COUNT, build_args

PROGRESS = re.compile(r"Progress: phase=(\w+) percent=(\d+)")


def _phases(caplog: pytest.LogCaptureFixture) -> list[tuple[str, int]]:
    found = (PROGRESS.match(r.getMessage()) for r in caplog.records)
    return [(m.group(1), int(m.group(2))) for m in found if m]


def test_progress_shows_training_then_adding_in_chunks_then_the_ground_truth(
    inputs: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "ADD_CHUNK_ROWS", 1000)
    caplog.set_level(logging.INFO)
    with evaluation.faiss_threads(1):
        code = cli.main(build_args(inputs / "v.npy", tmp_path / "out" / "rev", "--index-type", "IVF"))
    assert code == 0
    assert _phases(caplog) == [
        ("validate", 0), ("validate", 100),
        ("train", 0), *(("train", 10 * done) for done in range(1, 11)), ("train", 100),
        ("add", 0), ("add", 33), ("add", 67), ("add", 100),
        ("evaluate", 0), ("truth", 33), ("truth", 67), ("truth", 100), ("evaluate", 100),
        ("write", 0), ("write", 100),
    ]
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Progress: phase=train")]
    # IVF on 3,000 vectors: nlist 4*sqrt(3000) capped at 3000/39 = 76, so 256 x 76 > 3,000 trains on all.
    assert lines[0].startswith(f"Progress: phase=train percent=0 factory=IVF76,Flat sample={COUNT} vectors={COUNT} anon_mib=")
    # FAISS's 10 k-means iterations of the coarse quantizer, each as it ends (index/training_progress.py).
    assert re.match(r"Progress: phase=train percent=10 factory=IVF76,Flat iteration=1/10 objective=\S+ "
                    r"seconds=\d+\.\d anon_mib=\d+ peak_anon_mib=\d+$", lines[1])
    assert lines[10].startswith("Progress: phase=train percent=100 factory=IVF76,Flat iteration=10/10 objective=")
    assert re.match(r"Progress: phase=train percent=100 factory=IVF76,Flat sample=3000 seconds=\d+\.\d "
                    r"anon_mib=\d+ peak_anon_mib=\d+$", lines[11])
    adds = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Progress: phase=add")]
    assert adds[1].startswith("Progress: phase=add percent=33 vectors=1000/3000 anon_mib=")


@pytest.mark.parametrize("index_type", ["IVF", "Flat"])
def test_a_float16_normalised_source_builds_the_index_the_whole_array_path_builds(
    tmp_path: Path, vectors: np.ndarray, index_type: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunked reads, per-chunk conversion and normalisation, and the sample drawn from the memory
    map give byte for byte the index of converting the whole array and adding it in one call."""
    monkeypatch.setattr(pipeline, "ADD_CHUNK_ROWS", 700)
    half = (vectors * 4).astype(np.float16)
    np.save(tmp_path / "half.npy", half)
    with evaluation.faiss_threads(1):
        code = cli.main(build_args(tmp_path / "half.npy", tmp_path / "out" / "rev", "--index-type", index_type,
                                   "--metric", "InnerProduct", "--normalize"))
        assert code == 0
        whole = FAISSIndex(half.shape[1], index_type, env={}, metric="InnerProduct", normalize=True)
        whole.add_embeddings(half.astype(np.float32))
    built = faiss.read_index(str(tmp_path / "out" / "rev" / "index.faiss"))
    assert np.array_equal(faiss.serialize_index(built), faiss.serialize_index(whole.faiss_index))


def test_the_report_and_the_termination_message_carry_the_peak_anonymous_memory(
    inputs: Path, tmp_path: Path
) -> None:
    with evaluation.faiss_threads(1):
        assert cli.main(build_args(inputs / "v.npy", tmp_path / "out" / "rev", "--index-type", "HNSW")) == 0
    message = (tmp_path / "out" / "termination-log").read_text()
    saved = json.loads((tmp_path / "out" / "rev" / "report.json").read_text())
    peak = json.loads(message)["peak_anon_bytes"]
    # A Python process with numpy and FAISS loaded holds tens of MiB; a 3,000 x 32 build adds little.
    assert isinstance(peak, int) and 20 << 20 < peak < 2 << 30
    assert saved["peak_anon_bytes"] == peak
    assert build_report.parse_report(message).peak_anon_bytes == peak


def test_an_older_report_without_the_peak_still_reads() -> None:
    parsed = build_report.parse_report(json.dumps({"vectors": 10, "recall": 0.9, "p99_ms": 1.0}))
    assert parsed.peak_anon_bytes is None


# Run in a fresh interpreter so that the heap the test session already grew cannot hide a copy.
_BOUNDED_BUILD = """
import json, sys
from pathlib import Path
from faiss_operator.builder import anon_memory, pipeline
from faiss_operator.index import evaluation
source, out = Path(sys.argv[1]), Path(sys.argv[2])
pipeline.ADD_CHUNK_ROWS = 8192  # 8 MiB chunks: the measured rise is then mostly what should not be there
request = pipeline.BuildRequest(
    source=str(source), out=out, index_type="IVFPQ", metric="InnerProduct", normalize=True, eval_queries=100,
    config={"nlist": 64, "m_pq": 8, "train_size": 5000},
)
with evaluation.faiss_threads(1):
    before = anon_memory.rss_anon_bytes()
    report = pipeline.build(request)
print(json.dumps({"before": before, "peak": report["peak_anon_bytes"]}))
"""


def test_no_step_holds_a_full_float32_copy_of_a_float16_normalised_input(tmp_path: Path) -> None:
    """400,000 x 256 float16 (195 MiB mapped) would be 391 MiB as float32: the old build converted and
    normalised it whole for the add and again for the ground truth. Streaming, the peak rise is the
    chunks, the ids and the small IVFPQ index: well under half of one copy."""
    rows, dimension = 400_000, 256
    path = tmp_path / "half.npy"
    mapped = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(rows, dimension))
    for start in range(0, rows, 100_000):
        chunk = np.random.default_rng(start).standard_normal((100_000, dimension))
        mapped[start : start + 100_000] = chunk.astype(np.float16)
    mapped.flush()
    del mapped
    finished = subprocess.run(
        [sys.executable, "-c", _BOUNDED_BUILD, str(path), str(tmp_path / "out")],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    measured = json.loads(finished.stdout.strip().splitlines()[-1])
    full_copy = rows * dimension * 4
    assert measured["peak"] - measured["before"] < full_copy / 2, measured


def test_the_running_termination_message_follows_the_progress_with_the_peak(
    inputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a build killed at any moment after reading its input leaves: each write of the
    termination log while it runs, captured in order (the final report replaces the last)."""
    written: list[dict[str, Any]] = []
    original = reports.write_termination_log

    def capture(path: Path, document: dict[str, Any]) -> None:
        written.append(dict(document))
        original(path, document)

    monkeypatch.setattr(reports, "write_termination_log", capture)  # as builder/command.py calls it
    with evaluation.faiss_threads(1):
        assert cli.main(build_args(inputs / "v.npy", tmp_path / "out" / "rev", "--index-type", "IVF")) == 0
    running, final = written[:-1], written[-1]
    assert final["status"] == "Succeeded" and all(w["status"] == "Running" for w in running)
    assert "build_phase" not in running[0] and running[0]["input_bytes"] == COUNT * 32 * 4
    steps = [(w["build_phase"], w["percent"]) for w in running[1:]]
    assert steps[:14] == [
        ("train", 0), *(("train", 10 * done) for done in range(1, 11)), ("train", 100), ("add", 0), ("add", 100)
    ]
    assert steps[-1] == ("write", 100)
    peaks = [w["peak_anon_bytes"] for w in running[1:]]
    assert all(isinstance(p, int) for p in peaks) and peaks == sorted(peaks)  # a peak never goes down
