"""Scoring answers the way the build does, shared by the build and the live prober: each query's
own row left out (`without_own`), hits of the true top-k (`hits_at_k`), on positions or ids."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from faiss_operator.index import evaluation


@pytest.mark.parametrize(("neighbors", "own", "k", "want"), [
    # positions, as the build has them: the own row first, in the middle, absent
    (np.array([[7, 1, 2], [3, 9, 4], [5, 6, 8]]), np.array([7, 9, 0]), 2, [[1, 2], [3, 4], [5, 6]]),
    # external ids, as the server answers
    ([["a", "b", "c"], ["d", "e", "f"]], ["c", "d"], 2, [["a", "b"], ["e", "f"]]),
    # fewer found than k + 1 (a server drops FAISS's -1 padding): the row stays short
    ([["a", "b"], []], ["a", "z"], 2, [["b"], []]),
    # -1 padding from FAISS is never anyone's own row
    (np.array([[4, -1, -1]]), np.array([4]), 2, [[-1, -1]]),
])
def test_without_own_leaves_each_querys_own_row_out(neighbors: Any, own: Any, k: int, want: list[list[Any]]) -> None:
    assert [[int(x) if isinstance(x, np.integer) else x for x in row]
            for row in evaluation.without_own(neighbors, own, k)] == want


def test_without_own_needs_one_own_row_per_query() -> None:
    with pytest.raises(ValueError, match="2 answers but 1 own rows: one own row per query is needed"):
        evaluation.without_own([[1, 2], [3, 4]], [1], 1)


@pytest.mark.parametrize(("found", "truth", "k", "want"), [
    ([[1, 2, 3], [4, 5, 6]], [[1, 2, 9], [6, 5, 4]], 3, 2 + 3),  # order within the top k does not matter
    ([[1, 2, 3]], [[3, 2, 1]], 1, 0),  # only the top k of each side counts
    ([["a", "b"], ["c"]], [["b", "x"], ["c", "y"]], 2, 1 + 1),  # ids, and a short answer
    ([[-1, -1]], [[1, 2]], 2, 0),  # padding never hits
    ([[None, "a"]], [["a", None]], 2, 1),  # nor does a missing id
])
def test_hits_at_k_counts_the_true_top_k_found(found: Any, truth: Any, k: int, want: int) -> None:
    assert evaluation.hits_at_k(found, truth, k) == want


def test_hits_at_k_agrees_with_recall_at_k_on_positions() -> None:
    rng = np.random.default_rng(0)
    truth = np.array([rng.choice(30, 10, replace=False) for _ in range(50)])  # a true top-k has no repeats
    found = np.array([rng.choice(30, 10, replace=False) for _ in range(50)])

    assert evaluation.hits_at_k(found, truth, 10) / (10 * 50) == pytest.approx(evaluation.recall_at_k(found, truth, 10))


def test_hits_at_k_needs_as_many_answers_as_ground_truth_rows() -> None:
    with pytest.raises(ValueError, match="1 answers but 2 ground-truth rows"):
        evaluation.hits_at_k([[1]], [[1], [2]], 1)
