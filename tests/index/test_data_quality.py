"""Degenerate data is counted by one rule (index/data_quality.py), and refused where the metric
cannot rank it: (near-)zero norms under cosine. Issue 19, item 11: a vector of norm 1e-9 was
accepted under `normalize` and ranked as noise."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from faiss_operator.index import FAISSIndex, InputError, data_quality


def _clean(count: int = 50, dimension: int = 8) -> np.ndarray:
    return np.random.default_rng(5).standard_normal((count, dimension)).astype(np.float32)


def test_clean_data_counts_nothing() -> None:
    assert data_quality.inspect(_clean()) == data_quality.DataQuality(vectors=50)
    assert data_quality.inspect(_clean()).warnings() == []


def test_each_kind_is_counted_across_chunks() -> None:
    vectors = _clean()
    vectors[:, 2] = 0.5                    # a constant dimension
    vectors[:, 5] = -1.0                   # another
    vectors[30] = vectors[4]               # a duplicate across chunks
    vectors[31] = vectors[4]               # and a second copy
    vectors[41] = 0.0                      # zero norm ...
    vectors[41, 2], vectors[41, 5] = 0.5, -1.0  # ... apart from the constant dimensions
    vectors[42] = vectors[41] * 0          # -0.0 and 0.0: the same vector
    vectors[42, 2], vectors[42, 5] = 0.5, -1.0
    vectors[45] = 1e-9                     # a near-zero norm (and its dimensions 2, 5 no longer constant)
    quality = data_quality.inspect(vectors, chunk_rows=16)
    assert quality == data_quality.DataQuality(
        vectors=50, near_zero_norm_vectors=1, first_near_zero=45, duplicate_vectors=3, constant_dimensions=0
    )
    vectors[45] = vectors[0]
    assert data_quality.inspect(vectors, chunk_rows=16) == data_quality.DataQuality(
        vectors=50, duplicate_vectors=4, constant_dimensions=2
    )
    assert data_quality.inspect(vectors, chunk_rows=16).warnings() == [
        "4 of 50 vectors repeat an earlier vector exactly",
        "2 dimensions hold the same value in every vector",
    ]


def test_one_vector_has_no_constant_dimensions() -> None:
    """Every dimension of a single vector trivially "holds the same value": not worth a warning."""
    assert data_quality.inspect(_clean(count=1)) == data_quality.DataQuality(vectors=1)
    assert data_quality.inspect(_clean(count=1)).warnings() == []
    pair = _clean(count=2)
    pair[1, 3] = pair[0, 3]
    assert data_quality.inspect(pair) == data_quality.DataQuality(vectors=2, constant_dimensions=1)


def test_float16_input_is_counted_without_converting_it_whole() -> None:
    vectors = _clean().astype(np.float16)
    vectors[7] = vectors[3]
    assert data_quality.inspect(vectors, chunk_rows=10) == data_quality.DataQuality(vectors=50, duplicate_vectors=1)


def test_a_near_zero_vector_is_refused_under_cosine_and_kept_under_l2() -> None:
    vectors = _clean()
    vectors[9] = 1e-9
    cosine = FAISSIndex(8, "Flat", metric="InnerProduct", normalize=True, env={})
    with pytest.raises(InputError) as error:
        cosine.add_embeddings(vectors)
    assert str(error.value) == (
        "embeddings: 1 (near-)zero vector(s) (L2 norm below 1e-06; first at row 9) have no direction, so cosine "
        "similarity (normalize) is undefined for them"
    )
    assert cosine.ntotal == 0
    euclidean = FAISSIndex(8, "Flat", env={})
    euclidean.add_embeddings(vectors)
    assert euclidean.search(np.zeros(8, np.float32), k=1)[0].ids == [9]


# In a fresh interpreter: the heap the test session has already grown could hide what inspect keeps.
_INSPECT_MEMORY = """
import json, sys
import numpy as np
from faiss_operator.builder import allocator, anon_memory
from faiss_operator.index import data_quality
allocator.fix_mmap_threshold()  # as `faiss-operator build` does
vectors = np.random.default_rng(0).standard_normal((int(sys.argv[1]), 4), dtype=np.float32)
with anon_memory.PeakAnonMemory() as peak:
    before = anon_memory.rss_anon_bytes()
    quality = data_quality.inspect(vectors)
    after = anon_memory.rss_anon_bytes()
print(json.dumps({"before": before, "after": after, "peak": peak.bytes, "duplicates": quality.duplicate_vectors}))
"""


def test_counting_duplicates_holds_nine_bytes_per_vector_and_keeps_none_of_it() -> None:
    """The duplicate count is a row hash per vector (8 bytes) sorted in place, compared to its
    neighbour (1 byte). numpy's hash-set unique held ~64 bytes per vector at its peak and kept
    half of it on the C heap for the rest of the build: at 10M vectors, 300 MiB of the limit."""
    rows = 2_000_000
    finished = subprocess.run(
        [sys.executable, "-c", _INSPECT_MEMORY, str(rows)], capture_output=True, text=True, timeout=300, check=False
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    measured = json.loads(finished.stdout.strip().splitlines()[-1])
    assert measured["duplicates"] == 0
    assert measured["after"] - measured["before"] < 4 << 20, measured
    assert measured["peak"] - measured["before"] < 24 * rows, measured
