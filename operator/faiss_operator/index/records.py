"""External ids and per-id metadata beside a FAISS index.

FAISS numbers vectors by insertion position; users name them by their own ids (strings or
integers) and attach metadata. This module keeps the two-way mapping and the metadata, and
refuses ids or metadata that could not survive a save and load (duplicates, bools, floats,
values that are not JSON).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np

ExternalId: TypeAlias = str | int
Metadata: TypeAlias = dict[str, Any]


class RecordError(ValueError):
    """Ids or metadata that cannot be stored; the message says which and why."""


def normalize_id(value: Any, *, where: str) -> ExternalId:
    if isinstance(value, (bool, np.bool_)):
        raise RecordError(f"{where}: ids must be str or int, got bool {value!r}")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, str):
        return value
    raise RecordError(f"{where}: ids must be str or int, got {type(value).__name__} {value!r}")


class IdMap(Mapping[int, ExternalId]):
    """Position in the FAISS index -> external id, with the reverse lookup."""

    def __init__(self) -> None:
        self._ids: list[ExternalId] = []
        self._positions: dict[ExternalId, int] = {}

    def __getitem__(self, position: int) -> ExternalId:
        if not isinstance(position, int) or position < 0:
            raise KeyError(position)
        try:
            return self._ids[position]
        except IndexError:
            raise KeyError(position) from None

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self._ids)))

    def __len__(self) -> int:
        return len(self._ids)

    def ids(self) -> list[ExternalId]:
        return list(self._ids)

    def position_of(self, external_id: ExternalId) -> int | None:
        return self._positions.get(external_id)

    def external(self, position: int) -> ExternalId | None:
        if 0 <= position < len(self._ids):
            return self._ids[position]
        return None

    def check_new(self, ids: Sequence[ExternalId]) -> None:
        """Refuse ids already present or repeated in `ids`, before anything is added."""
        seen: set[ExternalId] = set()
        for external_id in ids:
            if external_id in self._positions or external_id in seen:
                raise RecordError(f"ids: duplicate id {external_id!r}")
            seen.add(external_id)

    def extend(self, ids: Sequence[ExternalId]) -> None:
        for external_id in ids:
            self._positions[external_id] = len(self._ids)
            self._ids.append(external_id)


def prepare_ids(ids: Any, *, count: int, start: int) -> list[ExternalId]:
    """The external ids for `count` new vectors: as given, or start..start+count-1."""
    if ids is None:
        return list(range(start, start + count))
    if isinstance(ids, (str, bytes)) or not hasattr(ids, "__len__"):
        raise RecordError(f"ids: expected a sequence of {count} ids, got {type(ids).__name__}")
    values = list(ids)
    if len(values) != count:
        raise RecordError(f"ids: got {len(values)} ids for {count} embeddings")
    return [normalize_id(value, where=f"ids[{row}]") for row, value in enumerate(values)]


def prepare_metadata(metadata: Any, ids: Sequence[ExternalId]) -> dict[ExternalId, Metadata]:
    """Metadata by id, from a list aligned with `ids` or a mapping id -> dict; None entries skipped."""
    if metadata is None:
        return {}
    found: dict[ExternalId, Any] = {}
    if isinstance(metadata, Mapping):
        known = set(ids)
        for raw_id, value in metadata.items():
            external_id = normalize_id(raw_id, where="metadata key")
            if external_id not in known:
                raise RecordError(f"metadata: id {external_id!r} is not among the ids being added")
            found[external_id] = value
    elif isinstance(metadata, (list, tuple)):
        if len(metadata) != len(ids):
            raise RecordError(f"metadata: got {len(metadata)} entries for {len(ids)} embeddings")
        found = dict(zip(ids, metadata, strict=True))
    else:
        raise RecordError(
            f"metadata: expected a list aligned with the ids or a dict id -> dict, got {type(metadata).__name__}"
        )
    result: dict[ExternalId, Metadata] = {}
    for external_id, value in found.items():
        if value is None:
            continue
        if not isinstance(value, dict):
            raise RecordError(f"metadata for id {external_id!r}: expected a dict, got {type(value).__name__}")
        try:
            json.dumps(value)
        except (TypeError, ValueError) as error:
            raise RecordError(f"metadata for id {external_id!r}: not JSON-serialisable: {error}") from None
        result[external_id] = value
    return result
