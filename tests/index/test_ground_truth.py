"""The evaluation's exact ground truth, computed a chunk of the base at a time, equals exact search."""

from __future__ import annotations

import numpy as np
import pytest

from faiss_operator.index import evaluation, ground_truth, normalization


def test_points_on_a_line_give_the_obvious_neighbours_whatever_the_chunk() -> None:
    base = np.arange(10, dtype=np.float32).reshape(-1, 1) * np.ones((1, 4), dtype=np.float32)
    queries = np.array([[2.1] * 4, [8.8] * 4, [-5.0] * 4], dtype=np.float32)
    for chunk_rows in (1, 3, 4, 10, 100):
        assert ground_truth.exact_neighbors(base, queries, 3, chunk_rows=chunk_rows).tolist() == [
            [2, 3, 1], [9, 8, 7], [0, 1, 2],
        ]


def test_inner_product_keeps_the_largest() -> None:
    base = np.array([[1, 0], [0, 1], [0.9, 0.1], [-1, 0]], dtype=np.float32)
    assert ground_truth.exact_neighbors(base, np.array([[1, 0]], dtype=np.float32), 4, "InnerProduct",
                                        chunk_rows=3).tolist() == [[0, 2, 1, 3]]


@pytest.mark.parametrize("metric", ["L2", "InnerProduct"])
@pytest.mark.parametrize("chunk_rows", [1, 7, 500, 4000])
def test_chunked_equals_exact_search_over_the_whole_base(
    dataset: tuple[np.ndarray, np.ndarray, np.ndarray], metric: str, chunk_rows: int
) -> None:
    base, queries, _ = dataset
    expected = evaluation.exact_neighbors(base, queries, 10, metric)
    assert np.array_equal(ground_truth.exact_neighbors(base, queries, 10, metric, chunk_rows=chunk_rows), expected)


def test_float16_and_normalised_chunks_equal_exact_search_on_the_converted_base(
    dataset: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    base, queries, _ = dataset
    half = (base * 3).astype(np.float16)  # not unit norm: normalising changes the answer
    converted = normalization.l2_normalized(half.astype(np.float32))
    expected = evaluation.exact_neighbors(converted, normalization.l2_normalized(queries), 10, "InnerProduct")
    found = ground_truth.exact_neighbors(half, queries, 10, "InnerProduct", normalize=True, chunk_rows=333)
    assert np.array_equal(found, expected)


def test_k_beyond_the_base_gives_every_row_and_progress_counts_rows() -> None:
    base = np.eye(5, dtype=np.float32)
    seen: list[tuple[int, int]] = []
    found = ground_truth.exact_neighbors(base, base[:1], 10, chunk_rows=2, on_chunk=lambda d, t: seen.append((d, t)))
    assert found.shape == (1, 5) and found[0, 0] == 0 and sorted(found[0].tolist()) == [0, 1, 2, 3, 4]
    assert seen == [(2, 5), (4, 5), (5, 5)]


def test_bad_queries_are_refused() -> None:
    with pytest.raises(ValueError, match=r"expected a non-empty \(q, 4\) array, got shape \(1, 3\)"):
        ground_truth.exact_neighbors(np.ones((5, 4), dtype=np.float32), np.ones((1, 3), dtype=np.float32), 1)
