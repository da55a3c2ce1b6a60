from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faiss_operator.sources import embeddings, errors
from tests.sources.conftest import write_fvecs


def test_npy_float32_is_memory_mapped(tmp_path: Path, vectors: np.ndarray) -> None:
    np.save(tmp_path / "v.npy", vectors)
    opened = embeddings.open_embeddings(tmp_path / "v.npy")
    assert isinstance(opened, np.memmap)
    np.testing.assert_array_equal(opened, vectors)


def test_npy_float16_is_kept_as_float16(tmp_path: Path, vectors: np.ndarray) -> None:
    np.save(tmp_path / "v.npy", vectors.astype(np.float16))
    opened = embeddings.open_embeddings(tmp_path / "v.npy")
    assert opened.dtype == np.float16 and opened.shape == vectors.shape


def test_fvecs_is_read_without_a_copy(tmp_path: Path, vectors: np.ndarray) -> None:
    opened = embeddings.open_embeddings(write_fvecs(tmp_path / "v.fvecs", vectors))
    assert opened.dtype == np.float32 and not opened.flags.owndata
    np.testing.assert_array_equal(opened, vectors)


def test_truncated_fvecs_is_malformed(tmp_path: Path, vectors: np.ndarray) -> None:
    path = write_fvecs(tmp_path / "v.fvecs", vectors)
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(errors.MalformedSourceError, match="not a whole number of rows"):
        embeddings.open_embeddings(path)


def test_fvecs_with_a_row_of_another_dimension_is_malformed(tmp_path: Path) -> None:
    # 3 rows of d=4 take 15 words; a second row claiming d=9 keeps the total but breaks the rows.
    words = np.array([4, 1, 2, 3, 4, 9, 1, 2, 3, 4, 4, 1, 2, 3, 4], dtype=np.int32)
    words.tofile(tmp_path / "v.fvecs")
    with pytest.raises(errors.MalformedSourceError, match="row 1 declares dimension 9"):
        embeddings.open_embeddings(tmp_path / "v.fvecs")


@pytest.mark.parametrize(
    ("array", "error", "message"),
    [
        (np.zeros((0, 8), np.float32), errors.EmptySourceError, "no vectors"),
        (np.zeros((5,), np.float32), errors.MalformedSourceError, "2-D"),
        (np.zeros((5, 8), np.float64), errors.UnsupportedSourceError, "float32 or float16, got float64"),
        (np.zeros((5, 8), np.int32), errors.UnsupportedSourceError, "got int32"),
    ],
)
def test_bad_npy_arrays(tmp_path: Path, array: np.ndarray, error: type[Exception], message: str) -> None:
    np.save(tmp_path / "v.npy", array)
    with pytest.raises(error, match=message):
        embeddings.open_embeddings(tmp_path / "v.npy")


def test_missing_file_and_unknown_extension(tmp_path: Path) -> None:
    with pytest.raises(errors.SourceNotFoundError, match="no such file"):
        embeddings.open_embeddings(tmp_path / "absent.npy")
    (tmp_path / "v.csv").write_text("1,2\n")
    with pytest.raises(errors.UnsupportedSourceError, match="'.csv'"):
        embeddings.open_embeddings(tmp_path / "v.csv")
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(errors.MalformedSourceError):
        embeddings.open_embeddings(tmp_path / "junk.npy")
    (tmp_path / "empty.fvecs").write_bytes(b"")
    with pytest.raises(errors.EmptySourceError):
        embeddings.open_embeddings(tmp_path / "empty.fvecs")


def test_dimension_mismatch_names_both_dimensions(vectors: np.ndarray) -> None:
    with pytest.raises(errors.DimensionMismatchError, match="dimension 8, expected 384"):
        embeddings.check_dimension(vectors, 384, name="v.npy")
    embeddings.check_dimension(vectors, 8, name="v.npy")
    embeddings.check_dimension(vectors, None, name="v.npy")


def test_non_finite_rows_are_counted_across_chunks(monkeypatch: pytest.MonkeyPatch, vectors: np.ndarray) -> None:
    monkeypatch.setattr(embeddings, "CHECK_CHUNK_ROWS", 7)
    vectors[13, 2] = np.nan
    vectors[13, 3] = np.inf
    vectors[40, 0] = -np.inf
    with pytest.raises(errors.NonFiniteValuesError, match="2 of 50 vectors hold NaN or Inf; the first is row 13"):
        embeddings.check_finite(vectors, name="v.npy")


def test_float16_overflow_counts_as_non_finite(vectors: np.ndarray) -> None:
    half = vectors.astype(np.float16)
    half[3, 0] = np.float16(np.inf)
    with pytest.raises(errors.NonFiniteValuesError, match="row 3"):
        embeddings.check_finite(half, name="v.npy")
