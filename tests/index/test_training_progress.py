"""An IVF's coarse k-means reports each iteration as it ends (index/training_progress.py): FAISS
only prints them, so stdout is relayed through a pipe for the length of the training."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys

import faiss
import numpy as np
import pytest

from faiss_operator.index import FAISSIndex, factory, training_progress


def _vectors(count: int = 2000, dimension: int = 16) -> np.ndarray:
    return np.random.default_rng(3).standard_normal((count, dimension)).astype(np.float32)


def test_each_iteration_is_reported_while_faiss_trains_and_stdout_is_given_back(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    index = FAISSIndex(16, "IVF", {"nlist": 32}, env={})
    seen: list[tuple[int, int, bool, float]] = []

    def record(done: int, iterations: int, objective: str) -> None:
        ivf = faiss.extract_index_ivf(index.faiss_index) if index.faiss_index is not None else None
        seen.append((done, iterations, ivf is not None and ivf.is_trained, float(objective)))

    stdout_before = os.fstat(1)
    with caplog.at_level(logging.INFO, logger=training_progress.__name__):
        plan = index.create(num_vectors=2000, training_sample=_vectors(), on_training_iteration=record)
    assert plan.factory == "IVF32,Flat"
    assert [(done, iterations, trained) for done, iterations, trained, _ in seen] == [
        (done, 10, False) for done in range(1, 11)  # index.faiss_index is set only after train returns
    ]
    objectives = [objective for *_, objective in seen]
    assert objectives[-1] < objectives[0]  # k-means lowers its objective (L2: the sum of squared distances)
    after = os.fstat(1)
    assert (after.st_dev, after.st_ino) == (stdout_before.st_dev, stdout_before.st_ino)
    assert faiss.extract_index_ivf(index.faiss_index).cp.verbose is False
    training_progress._libc().fflush(None)  # FAISS's last "\n", had it stayed in C stdio's buffer
    assert capfd.readouterr().out == ""
    logged = [r.getMessage() for r in caplog.records]  # FAISS's other lines
    assert logged[0] == "FAISS: Clustering 2000 points in 16D to 32 clusters, redo 1 times, 10 iterations"
    assert [re.sub(r"[\d.]+ s$", "T s", line) for line in logged[1:]] == ["FAISS: Preprocessing in T s"]
    print("after")  # stdout is the test's again
    assert capfd.readouterr().out == "after\n"


def test_a_report_that_fails_is_logged_and_the_training_finishes(caplog: pytest.LogCaptureFixture) -> None:
    def fail(done: int, iterations: int, objective: str) -> None:
        raise RuntimeError("the progress line could not be written")

    index = FAISSIndex(16, "IVF", {"nlist": 32}, env={})
    with caplog.at_level(logging.ERROR, logger=training_progress.__name__):
        index.create(num_vectors=2000, training_sample=_vectors(), on_training_iteration=fail)
    assert index.is_trained
    assert [r.getMessage() for r in caplog.records] == [
        f"Reporting k-means iteration {iteration} failed" for iteration in range(10)
    ]


@pytest.mark.parametrize(("config", "factory_string"), [
    ({}, "HNSW16_SQ6"),  # trains its scalar quantizer's ranges
    ({"encoding": "PQ", "m_pq": 8, "train_size": 1000}, "OPQ8,HNSW16_PQ8"),  # OPQ and PQ k-means, no IVF
])
def test_types_without_a_coarse_quantizer_train_unreported(config: dict[str, object], factory_string: str) -> None:
    calls: list[int] = []
    index = FAISSIndex(16, "OPQ+HNSW", config, env={})
    plan = index.create(num_vectors=2000, training_sample=_vectors(1000), on_training_iteration=lambda d, i, f: calls.append(d))
    assert (plan.factory, index.is_trained, calls) == (factory_string, True, [])


def test_a_training_inside_another_report_runs_unreported() -> None:
    """Two trainings at once in one process cannot both own file descriptor 1: the second runs
    with FAISS's verbose flag left as it was, and reports nothing."""
    inner: list[int] = []
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(16), 16, 32)
    with training_progress.reporting_iterations(faiss.ClusteringParameters(), lambda d, i, f: None):
        with training_progress.reporting_iterations(index.cp, lambda d, i, f: inner.append(d)):
            assert index.cp.verbose is False
            index.train(_vectors())
    assert (index.is_trained, inner) == (True, [])


# In a fresh interpreter whose log goes to stdout, the fd being captured, and another thread's print.
_LOGGING_TO_STDOUT = """
import logging, os, sys
import numpy as np
from faiss_operator.index import FAISSIndex
logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(name)s %(message)s")
index = FAISSIndex(32, "IVF", {"nlist": 512}, env={})
def report(done, iterations, objective):
    logging.getLogger("build").info("iteration %d/%d", done, iterations)
    if done == 1:
        os.write(1, b"a line of someone else's\\n")
vectors = np.random.default_rng(0).standard_normal((50_000, 32)).astype(np.float32)
index.create(num_vectors=50_000, training_sample=vectors, on_training_iteration=report)
print("trained", index.is_trained)
"""


def test_a_log_written_to_stdout_is_not_captured_again() -> None:
    """A log handler on stdout writes into the pipe while it is captured: its lines, and anything
    else that is not FAISS's, go on to the real stdout once, instead of being logged again (which
    looped until the pipe filled and FAISS blocked)."""
    finished = subprocess.run(
        [sys.executable, "-c", _LOGGING_TO_STDOUT], capture_output=True, text=True, timeout=120, check=False
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    lines = finished.stdout.splitlines()
    assert lines[0] == "faiss_operator.index.training_progress FAISS: Clustering 50000 points in 32D to 512 clusters, redo 1 times, 10 iterations"
    assert [line for line in lines if line.startswith("build ")] == [f"build iteration {i}/10" for i in range(1, 11)]
    assert lines.count("a line of someone else's") == 1
    assert lines[-1] == "trained True"
    assert not any("FAISS: build" in line or "FAISS: faiss_operator" in line for line in lines)
