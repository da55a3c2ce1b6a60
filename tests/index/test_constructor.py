"""The seed guide's constructor forms, and every bad argument refused with a named field."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from faiss_operator.index import ConfigError, FAISSIndex, TrainingError, config


def test_hnsw_gets_optimised_defaults() -> None:
    index = FAISSIndex(dimension=384, index_type="HNSW", env={})
    assert index.config == config.HNSWConfig(m=32, ef_construction=200, ef_search=64)


def test_config_overrides_defaults() -> None:
    index = FAISSIndex(dimension=384, index_type="HNSW", config={"m": 16, "ef_search": 128}, env={})
    assert (index.config.m, index.config.ef_search, index.config.ef_construction) == (16, 128, 200)  # type: ignore[union-attr]


def test_legacy_keyword_arguments_still_work() -> None:
    index = FAISSIndex(dimension=384, index_type="IVF", nlist=100, nprobe=10, env={})
    assert (index.config.nlist, index.config.nprobe) == (100, 10)  # type: ignore[union-attr]
    assert index.config_sources["nlist"] == "argument"


def test_legacy_keywords_that_contradict_config_are_refused() -> None:
    with pytest.raises(ConfigError, match="config.nprobe: given twice with different values"):
        FAISSIndex(dimension=8, index_type="IVF", config={"nprobe": 4}, nprobe=5, env={})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dimension": 0}, "dimension: expected a positive integer"),
        ({"dimension": "384"}, "dimension: expected a positive integer"),
        ({"dimension": True}, "dimension: expected a positive integer"),
        ({"dimension": 8, "index_type": "LSH"}, "index_type: unknown index type 'LSH'; expected one of Flat, IVF"),
        ({"dimension": 8, "index_type": "HNSW", "config": {"nlist": 4}}, "config.nlist: not a parameter of index type 'HNSW' \\(it belongs to IVF and IVFPQ\\)"),
        ({"dimension": 8, "index_type": "HNSW", "config": {"mm": 4}}, "config.mm: unknown key for index type 'HNSW'; valid keys: ef_construction, ef_search, m"),
        ({"dimension": 8, "index_type": "HNSW", "config": {"m": 1000}}, "config.m: Input should be less than or equal to 256"),
        ({"dimension": 8, "index_type": "IVF", "nlst": 4}, "config.nlst: unknown key"),
        ({"dimension": 8, "index_type": "HNSW", "config": [("m", 4)]}, "config: expected a mapping"),
        ({"dimension": 8, "metric": "cosine"}, "metric: unknown metric 'cosine'.*InnerProduct with normalize=True"),
        ({"dimension": 8, "index_type": "OPQ+HNSW", "config": {"encoding": "SQ5"}}, "config.encoding: Input should be 'SQ4', 'SQ6', 'SQ8' or 'PQ'"),
    ],
)
def test_bad_constructor_arguments_name_the_field(kwargs: dict[str, Any], message: str) -> None:
    kwargs.setdefault("env", {})
    with pytest.raises(ConfigError, match=message):
        FAISSIndex(**kwargs)


@pytest.mark.parametrize(
    ("index_type", "values", "message"),
    [
        ("IVFPQ", {"m_pq": 7}, "config.m_pq: 7 does not divide the dimension 32"),
        ("OPQ+HNSW", {"encoding": "PQ", "m_pq": 8, "n_subquantizers": 5}, "config.n_subquantizers: 5 does not divide"),
        ("IVF", {"nlist": 100, "train_size": 50}, "config.train_size: 50 vectors cannot train IVF100,Flat, which needs at least 100"),
        ("IVFPQ", {"nlist": 4, "m_pq": 8, "train_size": 100}, "config.train_size: 100 vectors cannot train IVF4,PQ8x8"),
    ],
)
def test_configs_that_cannot_build_are_refused_at_build_naming_the_field(
    small: np.ndarray, index_type: str, values: dict[str, Any], message: str
) -> None:
    index = FAISSIndex(32, index_type, values, env={})
    with pytest.raises(ConfigError, match=message):
        index.add_embeddings(small)
    assert index.ntotal == 0


@pytest.mark.parametrize(
    ("index_type", "values", "count", "message"),
    [
        ("IVF", {"nlist": 100}, 50, "too few vectors to train IVF100,Flat: got 50, need at least 100"),
        ("IVFPQ", {"nlist": 4, "m_pq": 8}, 200, "too few vectors to train IVF4,PQ8x8: got 200, need at least 256"),
        ("OPQ+HNSW", {"encoding": "PQ", "m_pq": 8}, 100, "need at least 256"),
    ],
)
def test_too_few_vectors_to_train_is_a_clear_error(
    small: np.ndarray, index_type: str, values: dict[str, Any], count: int, message: str
) -> None:
    index = FAISSIndex(32, index_type, values, env={})
    with pytest.raises(TrainingError, match=message):
        index.add_embeddings(small[:count])
    assert index.ntotal == 0
    assert index.faiss_index is None


def test_from_tuning_result_accepts_the_json_dict() -> None:
    index = FAISSIndex.from_tuning_result(
        dimension=16, tuning_result={"index_type": "HNSW", "config": {"m": 12, "ef_search": 40}}
    )
    assert (index.index_type, index.config.m) == ("HNSW", 12)  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="tuning_result: expected a tuning result"):
        FAISSIndex.from_tuning_result(dimension=16, tuning_result={"config": {}})
