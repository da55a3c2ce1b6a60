"""Searching: shapes, per-call search parameters, and every bad query refused clearly."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from faiss_operator.index import FAISSIndex, IndexStateError, InputError, evaluation

from .conftest import DIMENSION


@pytest.fixture(scope="module")
def hnsw(dataset: tuple[np.ndarray, np.ndarray, np.ndarray]) -> FAISSIndex:
    index = FAISSIndex(DIMENSION, "HNSW", {"m": 8, "ef_construction": 40, "ef_search": 16}, env={})
    index.add_embeddings(dataset[0])
    return index


@pytest.fixture(scope="module")
def ivf(dataset: tuple[np.ndarray, np.ndarray, np.ndarray]) -> FAISSIndex:
    index = FAISSIndex(DIMENSION, "IVF", {"nlist": 64, "nprobe": 1}, env={})
    index.add_embeddings(dataset[0])
    return index


def test_batch_search_returns_one_result_per_query(
    hnsw: FAISSIndex, dataset: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> None:
    _, queries, _ = dataset
    results = hnsw.search(queries[:7], k=4)
    assert len(results) == 7
    assert all(len(r) == 4 for r in results)
    assert all(r.distances == sorted(r.distances) for r in results)


def test_k_larger_than_the_index_returns_every_vector(small: np.ndarray) -> None:
    index = FAISSIndex(DIMENSION, "Flat", env={})
    index.add_embeddings(small[:3])
    assert sorted(index.search(small[0], k=10)[0].ids) == [0, 1, 2]


@pytest.mark.parametrize(
    ("fixture", "low", "high"),
    [("hnsw", {"ef_search": 10}, {"ef_search": 256}), ("ivf", {"nprobe": 1}, {"nprobe": 64})],
)
def test_per_call_parameters_trade_speed_for_recall(
    request: pytest.FixtureRequest,
    dataset: tuple[np.ndarray, np.ndarray, np.ndarray],
    fixture: str,
    low: dict[str, int],
    high: dict[str, int],
) -> None:
    index: FAISSIndex = request.getfixturevalue(fixture)
    _, queries, truth = dataset
    recall_low = evaluation.recall_at_k(index.search_arrays(queries, 10, params=low)[1], truth, 10)
    recall_high = evaluation.recall_at_k(index.search_arrays(queries, 10, params=high)[1], truth, 10)
    recall_default = evaluation.recall_at_k(index.search_arrays(queries, 10)[1], truth, 10)
    assert recall_high > recall_low
    assert recall_high >= 0.99
    # A per-call override leaves the index's own setting alone.
    assert recall_default < recall_high


@pytest.mark.parametrize(
    ("index_type", "params", "message"),
    [
        ("HNSW", {"nprobe": 4}, "params.nprobe: not a search-time parameter of index type 'HNSW'; valid: ef_search"),
        ("HNSW", {"m": 4}, "params.m: not a search-time parameter"),
        ("Flat", {"ef_search": 4}, "valid: none"),
        ("HNSW", {"ef_search": 0}, "params.ef_search: expected a positive integer"),
        ("HNSW", {"ef_search": "64"}, "params.ef_search: expected a positive integer"),
        ("HNSW", {"ef_search": 10**6}, "params.ef_search"),
        ("IVF", {"nprobe": 0}, "params.nprobe: expected a positive integer, got 0"),
        ("IVF", {"nprobe": 2**21}, "params.nprobe: Input should be less than or equal to 1048576"),
        ("IVF", {"nprobe": True}, "expected a positive integer"),
    ],
)
def test_bad_search_parameters_are_refused(
    request: pytest.FixtureRequest,
    small: np.ndarray,
    index_type: str,
    params: dict[str, Any],
    message: str,
) -> None:
    index: FAISSIndex
    if index_type == "Flat":
        index = FAISSIndex(DIMENSION, "Flat", env={})
        index.add_embeddings(small)
    else:
        index = request.getfixturevalue(index_type.lower())
    with pytest.raises(InputError, match=message):
        index.search(small[0], k=3, params=params)


@pytest.mark.parametrize(
    ("queries", "k", "message"),
    [
        (np.zeros((2, DIMENSION + 1), np.float32), 3, "dimension 33 does not match the index dimension 32"),
        (np.zeros((0, DIMENSION), np.float32), 3, "no vectors"),
        (np.zeros((2, 2, DIMENSION), np.float32), 3, "expected shape"),
        (np.full((1, DIMENSION), np.nan, np.float32), 3, "NaN or infinite"),
        (np.array([["a"] * DIMENSION]), 3, "expected a float array"),
        (np.zeros((1, DIMENSION), np.float32), 0, "k: expected an integer from 1 to 10000"),
        (np.zeros((1, DIMENSION), np.float32), 10_001, "k: expected an integer"),
        (np.zeros((1, DIMENSION), np.float32), 2.0, "k: expected an integer"),
    ],
)
def test_bad_queries_are_refused(hnsw: FAISSIndex, queries: Any, k: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        hnsw.search(queries, k=k)


def test_searching_an_empty_index_is_a_clear_error() -> None:
    with pytest.raises(IndexStateError, match="the index is empty"):
        FAISSIndex(DIMENSION, "HNSW", env={}).search(np.zeros(DIMENSION, np.float32))


@pytest.mark.parametrize(
    ("embeddings", "message"),
    [
        (np.zeros(DIMENSION, np.float32), "expected shape \\(n, d\\)"),
        (np.zeros((3, 8), np.float32), "dimension 8 does not match"),
        (np.array([[np.inf] * DIMENSION], np.float32), "NaN or infinite"),
        (np.ones((2, DIMENSION), dtype=bool), "expected a float array"),
        ([[1.0, 2.0], [3.0]], "embeddings"),
    ],
)
def test_bad_embeddings_are_refused(embeddings: Any, message: str) -> None:
    index = FAISSIndex(DIMENSION, "Flat", env={})
    with pytest.raises(InputError, match=message):
        index.add_embeddings(embeddings)


def test_an_all_zero_vector_has_no_cosine_similarity(small: np.ndarray) -> None:
    index = FAISSIndex(DIMENSION, "Flat", metric="InnerProduct", normalize=True, env={})
    with_zero_row = small[:5].copy()
    with_zero_row[3] = 0.0
    with pytest.raises(InputError, match=r"embeddings: 1 \(near-\)zero vector\(s\) \(L2 norm below 1e-06; first at row 3\)"):
        index.add_embeddings(with_zero_row)
    index.add_embeddings(small[:5])
    with pytest.raises(InputError, match=r"queries: 1 \(near-\)zero vector"):
        index.search(np.zeros(DIMENSION, np.float32))


def test_one_rule_for_nprobe_above_the_nlist_the_build_chose() -> None:
    """Issue 10's case: IVF on 100 x 8 vectors with no nlist. The build chooses nlist 2; the
    default nprobe (10), the same value given per call, and any larger one all probe both lists."""
    vectors = np.random.default_rng(4).standard_normal((100, 8)).astype(np.float32)
    index = FAISSIndex(8, "IVF", env={})
    index.add_embeddings(vectors)
    assert index.config.nprobe == 10  # type: ignore[union-attr]
    assert index.nlist == 2
    assert index.effective_search_params() == {"nprobe": 2}
    assert index.effective_config() == {"nlist": 2, "nprobe": 2, "train_size": None}
    assert index.effective_config({"nprobe": 1}) == {"nlist": 2, "nprobe": 1, "train_size": None}
    default = index.search_arrays(vectors[:20], 5)
    for params in ({"nprobe": 10}, {"nprobe": 2}, {"nprobe": 1 << 20}):
        found = index.search_arrays(vectors[:20], 5, params=params)
        assert np.array_equal(found[1], default[1]) and np.array_equal(found[0], default[0])
    assert index.get_stats()["effective_config"]["nprobe"] == 2
