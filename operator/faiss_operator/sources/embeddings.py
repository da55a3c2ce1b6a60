"""Opening embedding files as (n, d) arrays without reading them whole, and checking them.

`.npy` files are memory-mapped (float32 or float16); `.fvecs` files (each row an int32 dimension
followed by that many float32) are memory-mapped too and viewed as a strided (n, d) float32
array, so a 1M x 384 input costs page cache, not a private copy. Validation walks the rows in
chunks, so that checking for NaN/Inf needs a chunk of memory, not a second copy of the data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from faiss_operator.sources import errors

SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float16))
EXTENSIONS = (".npy", ".fvecs")
CHECK_CHUNK_ROWS = 65536

Embeddings = npt.NDArray[np.float32] | npt.NDArray[np.float16]


def open_embeddings(path: Path, *, name: str | None = None) -> Embeddings:
    """Memory-map `path` (.npy or .fvecs) as an (n, d) array; `name` is how errors refer to it."""
    label = name or str(path)
    suffix = path.suffix.lower()
    if suffix not in EXTENSIONS:
        raise errors.UnsupportedSourceError(
            f"{label}: unsupported embeddings format {suffix or '(no extension)'!r}; expected .npy or .fvecs"
        )
    _require_readable(path, label)
    return _open_npy(path, label) if suffix == ".npy" else _open_fvecs(path, label)


def _require_readable(path: Path, label: str) -> None:
    if not path.exists():
        raise errors.SourceNotFoundError(f"{label}: no such file ({path})")
    if not path.is_file():
        raise errors.SourceNotFoundError(f"{label}: not a regular file ({path})")
    try:
        with open(path, "rb"):
            pass
    except OSError as error:
        raise errors.SourceNotFoundError(f"{label}: cannot be read ({error.strerror})") from None


def _open_npy(path: Path, label: str) -> Embeddings:
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as error:
        raise errors.MalformedSourceError(f"{label}: not a readable .npy array: {error}") from None
    except OSError as error:
        raise errors.MalformedSourceError(f"{label}: cannot read as .npy: {error}") from None
    if array.dtype not in SUPPORTED_DTYPES:
        raise errors.UnsupportedSourceError(
            f"{label}: embeddings must be float32 or float16, got {array.dtype}; convert with astype(np.float32)"
        )
    if array.ndim != 2:
        if array.size == 0:
            raise errors.EmptySourceError(f"{label}: holds no vectors (shape {array.shape})")
        raise errors.MalformedSourceError(f"{label}: expected a 2-D array (vectors x dimension), got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise errors.EmptySourceError(f"{label}: holds no vectors (shape {array.shape})")
    return array  # type: ignore[no-any-return]


def _open_fvecs(path: Path, label: str) -> Embeddings:
    size = path.stat().st_size
    if size == 0:
        raise errors.EmptySourceError(f"{label}: the file is empty")
    if size % 4:
        raise errors.MalformedSourceError(f"{label}: {size} bytes is not a whole number of 4-byte values")
    raw = np.memmap(path, dtype=np.int32, mode="r")
    dimension = int(raw[0])
    if dimension <= 0:
        raise errors.MalformedSourceError(f"{label}: the first row declares dimension {dimension}")
    row_words = dimension + 1
    if raw.size % row_words:
        raise errors.MalformedSourceError(
            f"{label}: {raw.size} values is not a whole number of rows of dimension {dimension} "
            "(truncated file, or rows of different dimensions)"
        )
    rows = raw.reshape(-1, row_words)
    for start in range(0, len(rows), CHECK_CHUNK_ROWS):
        headers = rows[start : start + CHECK_CHUNK_ROWS, 0]
        wrong = np.flatnonzero(headers != dimension)
        if wrong.size:
            row = start + int(wrong[0])
            raise errors.MalformedSourceError(
                f"{label}: row {row} declares dimension {int(headers[wrong[0]])}, the first row {dimension}"
            )
    return rows[:, 1:].view(np.float32)


def check_dimension(embeddings: Embeddings, expected: int | None, *, name: str) -> None:
    if expected is not None and embeddings.shape[1] != expected:
        raise errors.DimensionMismatchError(
            f"{name}: vectors have dimension {embeddings.shape[1]}, expected {expected}"
        )


def check_finite(embeddings: Embeddings, *, name: str) -> None:
    """Raise NonFiniteValuesError naming how many rows hold NaN/Inf and the first of them."""
    bad_rows = 0
    first: int | None = None
    for start in range(0, len(embeddings), CHECK_CHUNK_ROWS):
        chunk = np.asarray(embeddings[start : start + CHECK_CHUNK_ROWS])
        bad = ~np.isfinite(chunk).all(axis=1)
        count = int(bad.sum())
        if count:
            bad_rows += count
            if first is None:
                first = start + int(np.flatnonzero(bad)[0])
    if bad_rows:
        # float16 holds at most ±65504: a larger value became Inf when the file was written.
        overflow = " (float16 overflow? float16 holds at most ±65504)" if embeddings.dtype == np.float16 else ""
        raise errors.NonFiniteValuesError(
            f"{name}: {bad_rows} of {len(embeddings)} vectors hold NaN or Inf{overflow}; the first is row {first}"
        )
