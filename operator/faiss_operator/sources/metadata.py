"""Reading per-vector metadata: JSON lines, one object per vector, keyed by its id.

Each line is a JSON object with the vector's id under `id_key` (default "id"); the whole object
is kept as that vector's metadata, so a search returns what the user stored. There must be
exactly one record per id: a missing, extra, unknown or repeated id is an error, caught before
the build starts. Numeric ids in the file match int64 ids; string ids match text ids.

Files are read as people save them: a UTF-8 byte-order mark is skipped, CRLF line endings and
blank lines are accepted. A value the serving pods could not return exactly (NaN or Infinity,
an integer beyond 64 bits, a lone surrogate) is refused here, naming the line and the field,
by the same check the index layer applies (`index.records.check_metadata_value`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from faiss_operator.index import records as index_records
from faiss_operator.sources import errors
from faiss_operator.sources.ids import TEXT_ENCODING, Ids

DEFAULT_ID_KEY = "id"
Metadata = dict[int | str, dict[str, Any]]


def read_metadata(path: Path, *, id_key: str = DEFAULT_ID_KEY, name: str | None = None) -> Metadata:
    label = name or str(path)
    if not path.is_file():
        raise errors.SourceNotFoundError(f"{label}: no such file ({path})")
    records: Metadata = {}
    try:
        with open(path, encoding=TEXT_ENCODING) as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    raise errors.MalformedSourceError(f"{label}: line {number} is not JSON: {error.msg}") from None
                if not isinstance(record, dict):
                    raise errors.MalformedSourceError(f"{label}: line {number} is not a JSON object")
                try:
                    index_records.check_metadata_value(record, where=f"{label}: line {number}")
                except index_records.RecordError as error:
                    raise errors.MalformedSourceError(str(error)) from None
                if id_key not in record:
                    raise errors.MetadataMismatchError(f"{label}: line {number} has no {id_key!r} field")
                key = record[id_key]
                if isinstance(key, bool) or not isinstance(key, (int, str)):
                    raise errors.MetadataMismatchError(
                        f"{label}: line {number}: {id_key!r} must be an integer or a string, got {key!r}"
                    )
                if key in records:
                    raise errors.MetadataMismatchError(f"{label}: line {number}: id {key!r} appears twice")
                records[key] = record
    except UnicodeDecodeError as error:
        raise errors.MalformedSourceError(f"{label}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    return records


def check_metadata(metadata: Metadata, ids: Ids, *, name: str) -> None:
    """Exactly one record per id, and no record for an id that has no vector."""
    known: set[int | str] = set(ids.tolist()) if isinstance(ids, np.ndarray) else set(ids)
    unknown = [key for key in metadata if key not in known]
    if len(metadata) != len(known) or unknown:
        missing = next((key for key in _iter_ids(ids) if key not in metadata), None)
        detail = []
        if unknown:
            detail.append(f"{len(unknown)} records name ids with no vector (first {unknown[0]!r})")
        if missing is not None:
            detail.append(f"ids without a record (first {missing!r})")
        raise errors.MetadataMismatchError(
            f"{name}: {len(metadata)} metadata records for {len(known)} ids; " + "; ".join(detail)
        )


def _iter_ids(ids: Ids) -> list[int | str]:
    return ids.tolist() if isinstance(ids, np.ndarray) else list(ids)


def aligned(metadata: Metadata, ids: Ids) -> list[dict[str, Any]]:
    """The records in the order of `ids` (after check_metadata)."""
    return [metadata[key] for key in _iter_ids(ids)]
