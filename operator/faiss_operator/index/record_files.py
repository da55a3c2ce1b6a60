"""ids.json and metadata.jsonl, the artifact's record files, written and read a slice at a time.

ids.json is one JSON list (the bytes of `json.dumps(ids)`); metadata.jsonl holds one JSON value
per line, `null` for an id without metadata. Neither is ever one string in memory: 10M ids are
an ~80 MB document. Default ids (0..n-1) are recognised on reading by comparing the file with the
bytes they are written as, slice by slice, so that loading them holds a `range`, never a list of n
Python ints (~36 bytes per id, in every serving process).

Errors: `ArtifactError` naming the file (and the line of metadata.jsonl) for content that is not
ids or metadata; OSError as raised for a file that cannot be read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from faiss_operator.index import artifact, records

IDS_FILE = "ids.json"
METADATA_FILE = "metadata.jsonl"
# Ids per slice of ids.json and metadata.jsonl: a few MB of text at a time.
WRITE_CHUNK = 65_536


def write_ids(path: Path, ids: Sequence[records.ExternalId]) -> None:
    """`ids` as the bytes of json.dumps(list(ids)), a slice at a time."""
    with path.open("w") as handle:
        handle.writelines(_json_list_pieces(ids))


def write_metadata(path: Path, ids: Sequence[records.ExternalId], metadata: Mapping[records.ExternalId, records.Metadata]) -> None:
    """One line per id in `ids`: its metadata as JSON, or `null`."""
    with path.open("w") as handle:
        for start in range(0, len(ids), WRITE_CHUNK):
            chunk = ids[start : start + WRITE_CHUNK]
            if not metadata:
                handle.write("null\n" * len(chunk))
                continue
            # allow_nan=False: what entered was checked (records.py); a NaN here would be a bug.
            handle.writelines(json.dumps(metadata.get(external_id), allow_nan=False) + "\n" for external_id in chunk)


def read_ids(root: Path, count: object) -> Sequence[records.ExternalId]:
    """The ids in root/ids.json: `range(count)` when the file is exactly the default ids of the
    manifest's `count` vectors (read a slice at a time), else the parsed and normalised list."""
    path = root / IDS_FILE
    if isinstance(count, int) and count >= 0 and _holds_positions(path, count):
        return range(count)
    try:
        raw = json.loads(path.read_text())
        if not isinstance(raw, list):
            raise ValueError("not a JSON list")
        if records.are_positions(raw):
            return range(len(raw))  # the default ids written another way (by hand, another writer)
        return [records.normalize_id(value, where=f"{IDS_FILE}[{position}]") for position, value in enumerate(raw)]
    except (ValueError, records.RecordError) as error:
        raise artifact.ArtifactError(f"artifact {root}: {IDS_FILE} is not a list of ids: {error}") from None


def read_metadata(root: Path) -> list[records.Metadata | None]:
    """One entry per line of root/metadata.jsonl: a checked metadata object, or None."""
    rows: list[records.Metadata | None] = []
    with (root / METADATA_FILE).open() as handle:
        for number, line in enumerate(handle, start=1):
            if line == "null\n":  # the common line, 10M times for an index without metadata
                rows.append(None)
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as error:
                raise artifact.ArtifactError(
                    f"artifact {root}: {METADATA_FILE} line {number} is not JSON: {error}"
                ) from None
            if value is not None and not isinstance(value, dict):
                raise artifact.ArtifactError(f"artifact {root}: {METADATA_FILE} line {number} is not an object")
            if value is not None:
                try:
                    records.check_metadata_value(value, where=f"{METADATA_FILE} line {number}")
                except records.RecordError as error:
                    raise artifact.ArtifactError(f"artifact {root}: {error}") from None
            rows.append(value)
    return rows


def _json_list_pieces(values: Sequence[records.ExternalId]) -> Iterator[str]:
    """The text of json.dumps(list(values)) in pieces of WRITE_CHUNK values."""
    yield "["
    for start in range(0, len(values), WRITE_CHUNK):
        piece = json.dumps(list(values[start : start + WRITE_CHUNK]), allow_nan=False)[1:-1]
        yield f", {piece}" if start else piece
    yield "]"


def _holds_positions(path: Path, count: int) -> bool:
    """Whether `path` holds exactly the bytes write_ids writes for range(count)."""
    with path.open("rb") as handle:
        for piece in _json_list_pieces(range(count)):
            expected = piece.encode("ascii")
            if handle.read(len(expected)) != expected:
                return False
        return handle.read(1) == b""
