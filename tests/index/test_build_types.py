"""Every index type builds on real FAISS and finds the true neighbours well enough."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from faiss_operator.index import FAISSIndex, evaluation

from .conftest import DIMENSION

CASES: list[tuple[str, dict[str, Any], str, float]] = [
    ("Flat", {}, "Flat", 1.0),
    ("IVF", {"nprobe": 8}, "IVF", 0.9),
    ("IVFPQ", {"m_pq": 16, "nprobe": 8}, "PQ16x8", 0.6),
    ("HNSW", {"m": 16, "ef_construction": 80}, "HNSW16", 0.95),
    ("OPQ+HNSW", {}, "HNSW16_SQ6", 0.9),
    ("OPQ+HNSW", {"encoding": "SQ8", "m_hnsw": 8}, "HNSW8_SQ8", 0.9),
    ("OPQ+HNSW", {"encoding": "PQ", "m_pq": 8, "train_size": 1000}, "OPQ8,HNSW16_PQ8", 0.4),
    # The seed guide's keys without an encoding: they ask for OPQ + PQ codes, and get them.
    ("OPQ+HNSW", {"m_pq": 8, "n_subquantizers": 16, "m_hnsw": 12, "train_size": 1000}, "OPQ16,HNSW12_PQ8", 0.4),
]


@pytest.mark.parametrize(("index_type", "config", "factory_part", "floor"), CASES)
def test_type_builds_and_meets_its_recall_floor(
    dataset: tuple[np.ndarray, np.ndarray, np.ndarray],
    index_type: str,
    config: dict[str, Any],
    factory_part: str,
    floor: float,
) -> None:
    base, queries, truth = dataset
    index = FAISSIndex(DIMENSION, index_type, config, env={})
    index.add_embeddings(base)

    _, positions = index.search_arrays(queries, 10)

    assert index.ntotal == len(base)
    assert factory_part in (index.factory_string or "")
    assert evaluation.recall_at_k(positions, truth, 10) >= floor


def test_ivf_nlist_scales_with_the_data(dataset: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    base, _, _ = dataset
    index = FAISSIndex(DIMENSION, "IVF", env={})
    index.add_embeddings(base)
    # 4*sqrt(4000) = 252, but 4000 vectors train at most 4000 // 39 = 102 cells well.
    assert index.factory_string == "IVF102,Flat"


def test_inner_product_with_normalize_ranks_by_cosine() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(200, DIMENSION)).astype(np.float32) * rng.uniform(1, 50, size=(200, 1)).astype(np.float32)
    index = FAISSIndex(DIMENSION, "Flat", metric="InnerProduct", normalize=True, env={})
    index.add_embeddings(base)

    result = index.search(base[17] * 3.0, k=1)[0]

    assert result.ids == [17]
    assert result.distances[0] == pytest.approx(1.0, abs=1e-5)


def test_later_adds_extend_a_trained_index_without_retraining(
    dataset: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    base, _, _ = dataset
    index = FAISSIndex(DIMENSION, "IVF", {"nlist": 16}, env={})
    index.add_embeddings(base[:2000])
    index.add_embeddings(base[2000:])
    assert index.ntotal == len(base)
    assert index.id_map[len(base) - 1] == len(base) - 1


def test_float16_embeddings_are_accepted(small: np.ndarray) -> None:
    index = FAISSIndex(DIMENSION, "Flat", env={})
    index.add_embeddings(small.astype(np.float16))
    assert index.search(small[5], k=1)[0].ids == [5]
