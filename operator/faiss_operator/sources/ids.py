"""Reading the external ids of the vectors: an int64 .npy, or a text file of one string id per line.

Ids must be unique (a search result names one vector) and one per vector; both are checked here,
before a build spends minutes, with messages that name the first offender.

Text files are read as people save them: a UTF-8 byte-order mark (Windows' "UTF-8 with BOM") is
not part of the first id, CRLF line endings end a line like LF, and blank lines at the end of
the file are ignored. A blank line before the last id would shift every id after it, so it is
an error naming the line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from faiss_operator.sources import errors

Ids = npt.NDArray[np.int64] | list[str]
TEXT_EXTENSIONS = (".txt", ".ids", ".csv", ".tsv")
# UTF-8 that drops a leading byte-order mark; the ids and metadata readers share it.
TEXT_ENCODING = "utf-8-sig"


def read_ids(path: Path, *, name: str | None = None) -> Ids:
    label = name or str(path)
    if not path.is_file():
        raise errors.SourceNotFoundError(f"{label}: no such file ({path})")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return _read_npy(path, label)
    if suffix in TEXT_EXTENSIONS:
        return _read_text(path, label)
    raise errors.UnsupportedSourceError(
        f"{label}: unsupported ids format {suffix or '(no extension)'!r}; expected .npy (int64) or .txt (one id per line)"
    )


def _read_npy(path: Path, label: str) -> npt.NDArray[np.int64]:
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as error:
        raise errors.MalformedSourceError(f"{label}: not a readable .npy array: {error}") from None
    if array.ndim != 1:
        raise errors.MalformedSourceError(f"{label}: ids must be a 1-D array, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise errors.UnsupportedSourceError(
            f"{label}: numeric ids must be integers (int64), got {array.dtype}; use a text file for string ids"
        )
    if array.dtype == np.uint64 and array.size and int(array.max()) > np.iinfo(np.int64).max:
        raise errors.UnsupportedSourceError(f"{label}: ids above 2**63-1 do not fit int64")
    converted: npt.NDArray[np.int64] = array.astype(np.int64, copy=False)
    return converted


def _read_text(path: Path, label: str) -> list[str]:
    ids: list[str] = []
    first_blank: int | None = None
    try:
        # Universal newlines: "\r\n" and "\r" arrive as "\n", so only the line ending is cut.
        with open(path, encoding=TEXT_ENCODING) as lines:
            for number, line in enumerate(lines, start=1):
                value = line.removesuffix("\n")
                if not value.strip():
                    first_blank = number if first_blank is None else first_blank
                    continue
                if first_blank is not None:
                    raise errors.MalformedSourceError(
                        f"{label}: line {first_blank} is empty; every line must hold one id "
                        "(only blank lines at the end of the file are ignored)"
                    )
                ids.append(value)
    except UnicodeDecodeError as error:
        raise errors.MalformedSourceError(f"{label}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    return ids


def check_ids(ids: Ids, vectors: int, *, name: str) -> None:
    if len(ids) != vectors:
        raise errors.IdCountMismatchError(f"{name}: {len(ids)} ids for {vectors} vectors; expected one id per vector")
    duplicated = _duplicates(ids)
    if duplicated:
        count, first = duplicated
        raise errors.DuplicateIdsError(f"{name}: {count} ids appear more than once; the first is {first!r}")


def _duplicates(ids: Ids) -> tuple[int, object] | None:
    if isinstance(ids, np.ndarray):
        order = np.argsort(ids, kind="stable")
        ordered = ids[order]
        repeats = ordered[1:] == ordered[:-1]
        if not repeats.any():
            return None
        # The value whose second occurrence comes first in file order.
        first_repeat = int(order[1:][repeats].min())
        return len(np.unique(ordered[1:][repeats])), int(ids[first_repeat])
    seen: set[str] = set()
    first_text: str | None = None
    repeated_values: set[str] = set()
    for value in ids:
        if value in seen:
            repeated_values.add(value)
            if first_text is None:
                first_text = value
        seen.add(value)
    return (len(repeated_values), first_text) if repeated_values else None
