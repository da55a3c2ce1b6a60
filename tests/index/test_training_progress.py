"""An IVF's coarse k-means reports each iteration as it ends (index/training_progress.py): FAISS
only prints them, so stdout is relayed through a pipe for the length of the training."""

from __future__ import annotations

import logging
import os
import re

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

    def record(done: int, iterations: int, fields: dict[str, str]) -> None:
        ivf = faiss.extract_index_ivf(index.faiss_index) if index.faiss_index is not None else None
        seen.append((done, iterations, ivf is not None and ivf.is_trained, float(fields["objective"])))

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
    assert capfd.readouterr().out == ""
    logged = [r.getMessage() for r in caplog.records]  # FAISS's other lines
    assert logged[0] == "FAISS: Clustering 2000 points in 16D to 32 clusters, redo 1 times, 10 iterations"
    assert [re.sub(r"[\d.]+ s$", "T s", line) for line in logged[1:]] == ["FAISS: Preprocessing in T s"]
    print("after")  # stdout is the test's again
    assert capfd.readouterr().out == "after\n"


def test_a_report_that_fails_is_logged_and_the_training_finishes(caplog: pytest.LogCaptureFixture) -> None:
    def fail(done: int, iterations: int, fields: dict[str, str]) -> None:
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
