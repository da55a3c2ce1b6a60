"""Too few training points: one warning in the project's words, FAISS's repeated lines silenced,
an error only below the hard minimum; and PQ defaults that fit the dimension."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from faiss_operator.index import FAISSIndex, TrainingError, config as index_config, memory


def _vectors(count: int, dimension: int) -> np.ndarray:
    return np.random.default_rng(count + dimension).standard_normal((count, dimension)).astype(np.float32)


@pytest.mark.parametrize(
    ("index_type", "config", "count", "dimension", "factory", "recommended", "centroids"),
    [
        # The issue's case: nlist 256 on 5,000 vectors (FAISS printed its WARNING once per sub-quantizer).
        ("IVFPQ", {"nlist": 256, "m_pq": 16}, 5000, 64, "IVF256,PQ16x8", 9984, 256),
        ("IVF", {"nlist": 128}, 3000, 16, "IVF128,Flat", 4992, 128),
        ("OPQ+HNSW", {"encoding": "PQ", "m_pq": 4, "m_hnsw": 8}, 300, 16, "OPQ4,HNSW8_PQ4", 9984, 256),
    ],
)
def test_too_few_training_points_give_one_warning_and_no_faiss_lines(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
    index_type: str, config: dict[str, object], count: int, dimension: int, factory: str, recommended: int, centroids: int,
) -> None:
    index = FAISSIndex(dimension, index_type, config, env={})
    with caplog.at_level(logging.WARNING, logger="faiss_operator.index.factory"):
        index.add_embeddings(_vectors(count, dimension))
    assert index.factory_string == factory and index.ntotal == count
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"Training {factory} on {count} vectors, fewer than the {recommended} recommended (39 per centroid for "
        f"{centroids} centroids); recall may suffer: give at least {recommended} vectors (or train_size), "
        "or fewer centroids"
    ]
    captured = capfd.readouterr()
    assert "WARNING clustering" not in captured.err + captured.out


def test_enough_training_points_give_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    index = FAISSIndex(16, "IVF", {"nlist": 16}, env={})
    with caplog.at_level(logging.WARNING):
        index.add_embeddings(_vectors(16 * 39, 16))
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_fewer_points_than_centroids_is_the_only_error() -> None:
    index = FAISSIndex(16, "IVF", {"nlist": 64}, env={})
    with pytest.raises(TrainingError, match=r"too few vectors to train IVF64,Flat: got 50, need at least 64 \(one per centroid\)"):
        index.add_embeddings(_vectors(50, 16))
    assert index.ntotal == 0
    assert FAISSIndex(16, "IVF", {"nlist": 64}, env={}).add_embeddings(_vectors(64, 16)) == list(range(64))


@pytest.mark.parametrize(
    ("dimension", "ivfpq", "opq_hnsw"),
    [(64, 32, 64), (72, 36, 36), (100, 25, 50), (384, 48, 64), (768, 48, 64), (1000, 40, 50), (97, 97, 97), (8, 8, 8)],
)
def test_default_m_pq_is_a_divisor_chosen_from_the_dimension(dimension: int, ivfpq: int, opq_hnsw: int) -> None:
    assert index_config.default_m_pq(dimension, index_config.IVFPQ_M_PQ_TARGET) == ivfpq
    assert index_config.default_m_pq(dimension, index_config.OPQ_HNSW_M_PQ_TARGET) == opq_hnsw
    assert dimension % ivfpq == 0 and dimension % opq_hnsw == 0


@pytest.mark.parametrize(("dimension", "m_pq"), [(64, 32), (100, 25), (768, 48), (1000, 40)])
def test_ivfpq_defaults_build_on_common_dimensions(dimension: int, m_pq: int) -> None:
    index = FAISSIndex(dimension, "IVFPQ", env={})
    assert index.config.m_pq is None  # type: ignore[union-attr]
    vectors = _vectors(600, dimension)
    index.add_embeddings(vectors)
    assert index.factory_string == f"IVF{index.nlist},PQ{m_pq}x8"
    assert index.effective_config()["m_pq"] == m_pq
    assert index.memory_bytes() == pytest.approx(
        memory.estimate_bytes(index.config, dimension=dimension, num_vectors=600), rel=0.03
    )
    assert index.search(vectors[0], k=1)[0].ids == [0]


def test_an_explicit_m_pq_that_does_not_divide_the_dimension_names_the_divisors() -> None:
    with pytest.raises(index_config.ConfigError, match="config.m_pq: 48 does not divide the dimension 100"):
        FAISSIndex(100, "IVFPQ", {"m_pq": 48}, env={}).add_embeddings(_vectors(600, 100))


def test_opq_hnsw_pq_defaults_follow_the_dimension() -> None:
    index = FAISSIndex(72, "OPQ+HNSW", {"encoding": "PQ", "m_hnsw": 8}, env={})
    index.add_embeddings(_vectors(300, 72))
    assert index.factory_string == "OPQ36,HNSW8_PQ36"
    assert (index.effective_config()["m_pq"], index.effective_config()["n_subquantizers"]) == (36, 36)
