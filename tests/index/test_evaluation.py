"""Evaluation helpers: recall arithmetic, exact ground truth, latency and throughput."""

from __future__ import annotations

import numpy as np
import pytest

from faiss_operator.index import FAISSIndex, evaluation

from .conftest import DIMENSION


def test_recall_counts_the_overlap_with_the_true_top_k() -> None:
    truth = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    found = np.array([[1, 2, 9, 9], [8, 7, 6, 5]])
    assert evaluation.recall_at_k(found, truth, 4) == pytest.approx(6 / 8)
    assert evaluation.recall_at_k(found, truth, 2) == pytest.approx(2 / 4)
    assert evaluation.recall_at_k(np.array([[1, -1, -1, -1]]), truth[:1], 4) == pytest.approx(1 / 4)


@pytest.mark.parametrize(
    ("found", "truth", "k", "message"),
    [
        (np.zeros((2, 3)), np.zeros((3, 3)), 3, "must be \\(queries, k\\) alike"),
        (np.zeros((2, 3)), np.zeros((2, 3)), 4, "k must be between 1 and 3"),
        (np.zeros((0, 3)), np.zeros((0, 3)), 1, "at least one query"),
    ],
)
def test_recall_refuses_mismatched_inputs(found: np.ndarray, truth: np.ndarray, k: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        evaluation.recall_at_k(found, truth, k)


def test_exact_neighbors_respects_the_metric() -> None:
    base = np.array([[1, 0], [10, 0], [0, 1]], np.float32)
    query = np.array([[1, 0.1]], np.float32)
    assert evaluation.exact_neighbors(base, query, 1, "L2")[0, 0] == 0
    assert evaluation.exact_neighbors(base, query, 1, "InnerProduct")[0, 0] == 1


def test_evaluate_reports_what_the_gates_need(dataset: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    base, queries, truth = dataset
    index = FAISSIndex(DIMENSION, "Flat", env={})
    index.add_embeddings(base)
    report = evaluation.evaluate(index, queries, truth, k=10)
    assert report.recall_at_k == 1.0
    assert report.latency.count == len(queries)
    assert 0 < report.latency.p50_ms <= report.latency.p99_ms
    assert report.batch_qps > 0
    assert report.memory_bytes >= len(base) * DIMENSION * 4
    assert report.as_dict()["vectors"] == len(base)


def test_latency_works_on_raw_faiss_too(dataset: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    import faiss

    base, queries, _ = dataset
    raw = faiss.IndexFlatL2(DIMENSION)
    raw.add(base)
    assert evaluation.single_query_latency(raw, queries[:20], 10).count == 20
    with pytest.raises(TypeError, match="cannot search with int"):
        evaluation.single_query_latency(3, queries, 10)
