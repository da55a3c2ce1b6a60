"""One normalisation for the index, the build's ground truth and the tuner's: bit-identical vectors."""

from __future__ import annotations

import numpy as np
import pytest

from faiss_operator.index import FAISSIndex, InputError, normalization


def test_the_index_stores_exactly_what_l2_normalized_returns() -> None:
    vectors = np.random.default_rng(2).standard_normal((50, 12)).astype(np.float16)
    index = FAISSIndex(12, "Flat", metric="InnerProduct", normalize=True, env={})
    index.add_embeddings(vectors)
    stored = index.faiss_index.reconstruct_n(0, 50)
    expected = normalization.l2_normalized(vectors, chunk_rows=7)
    assert np.array_equal(stored, expected)
    assert np.allclose(np.linalg.norm(expected, axis=1), 1.0, atol=1e-6)


def test_chunking_does_not_change_the_result_and_zero_rows_stay_zero() -> None:
    vectors = np.random.default_rng(3).standard_normal((30, 5)).astype(np.float32)
    vectors[4] = 0
    whole = normalization.l2_normalized(vectors)
    assert np.array_equal(whole, normalization.l2_normalized(vectors, chunk_rows=4))
    assert not whole[4].any() and normalization.zero_rows(vectors).tolist() == [4]


def test_the_index_refuses_a_zero_vector_it_cannot_normalize() -> None:
    index = FAISSIndex(5, "Flat", normalize=True, env={})
    with pytest.raises(InputError, match=r"1 \(near-\)zero vector\(s\) \(L2 norm below 1e-06; first at row 2\)"):
        index.add_embeddings(np.eye(5, dtype=np.float32)[[0, 1, 1]] * [[1], [1], [0]])
