"""get_stats(): size, config and the rolling window of recent search times."""

from __future__ import annotations

import numpy as np

from faiss_operator.index import FAISSIndex, evaluation

from .conftest import DIMENSION


def test_stats_describe_the_index(small: np.ndarray) -> None:
    index = FAISSIndex(DIMENSION, "HNSW", {"m": 8}, env={})
    index.add_embeddings(small)
    stats = index.get_stats()
    assert stats["total_vectors"] == len(small)
    assert stats["index_type"] == "HNSW"
    assert stats["config"]["m"] == 8
    assert stats["memory_bytes"] == evaluation.memory_bytes(index.faiss_index)
    assert stats["memory_bytes"] > len(small) * DIMENSION * 4
    assert stats["searches_in_window"] == 0
    assert stats["p99_query_time_ms"] == 0.0


def test_latency_percentiles_cover_only_the_recent_window(small: np.ndarray) -> None:
    index = FAISSIndex(DIMENSION, "Flat", latency_window=5, env={})
    index.add_embeddings(small)
    for _ in range(12):
        index.search(small[0], k=1)
    stats = index.get_stats()
    assert stats["searches_in_window"] == 5
    assert 0 < stats["p50_query_time_ms"] <= stats["p90_query_time_ms"] <= stats["p99_query_time_ms"]
