"""The documented memory formulas agree with what FAISS really serializes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from faiss_operator.index import FAISSIndex, memory

from .conftest import DIMENSION


@pytest.mark.parametrize(
    ("index_type", "values"),
    [
        ("Flat", {}),
        ("IVF", {"nlist": 32}),
        ("IVFPQ", {"nlist": 16, "m_pq": 8}),
        ("HNSW", {"m": 16, "ef_construction": 40}),
        ("OPQ+HNSW", {"encoding": "SQ6", "ef_construction": 40}),
        ("OPQ+HNSW", {"encoding": "SQ8", "m_hnsw": 8, "ef_construction": 40}),
    ],
)
def test_estimate_is_within_three_percent_of_the_serialized_size(
    dataset: tuple[np.ndarray, np.ndarray, np.ndarray], index_type: str, values: dict[str, Any]
) -> None:
    base, _, _ = dataset
    index = FAISSIndex(DIMENSION, index_type, values, env={})
    index.add_embeddings(base)
    estimate = memory.estimate_bytes(index.config, dimension=DIMENSION, num_vectors=len(base))
    assert estimate == pytest.approx(index.memory_bytes(), rel=0.03)
