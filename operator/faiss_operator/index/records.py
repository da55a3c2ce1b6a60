"""External ids and per-id metadata beside a FAISS index.

FAISS numbers vectors by insertion position; users name them by their own ids (strings or
integers) and attach metadata. This module keeps the two-way mapping and the metadata, and
refuses, where they enter, ids or metadata that a later layer could not represent exactly: a
save and load (duplicates, bools, floats, values that are not JSON), the int64 of FAISS and .npy
ids, or the serving pods' JSON encoder (orjson: integers within 64 bits, finite floats, string
keys, valid UTF-8, bounded nesting). The same checks run again when an artifact is loaded, so an
artifact written by an older build cannot make a serving pod answer 500.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np

ExternalId: TypeAlias = str | int
Metadata: TypeAlias = dict[str, Any]


# Integer ids are FAISS's and .npy's int64.
ID_MIN = -(1 << 63)
ID_MAX = (1 << 63) - 1
# What the serving pods' JSON encoder (orjson) writes exactly: int64 and uint64.
METADATA_INT_MIN = -(1 << 63)
METADATA_INT_MAX = (1 << 64) - 1
# Levels of nested objects and lists in one metadata record; orjson stops at 254 levels, and a
# search answer wraps each record in four more.
MAX_METADATA_DEPTH = 64


class RecordError(ValueError):
    """Ids or metadata that cannot be stored; the message says which and why."""


def normalize_id(value: Any, *, where: str) -> ExternalId:
    """`value` as an external id (str, or int within int64); RecordError naming `where` otherwise."""
    if isinstance(value, (bool, np.bool_)):
        raise RecordError(f"{where}: ids must be str or int, got bool {value!r}")
    if isinstance(value, (int, np.integer)):
        number = int(value)
        if not ID_MIN <= number <= ID_MAX:
            raise RecordError(
                f"{where}: id {number} is outside the int64 range ({ID_MIN} .. {ID_MAX}) of FAISS and .npy ids; "
                "use a string id"
            )
        return number
    if isinstance(value, str):
        _check_text(value, where=where, what="id")
        return value
    raise RecordError(f"{where}: ids must be str or int, got {type(value).__name__} {value!r}")


def _check_text(value: str, *, where: str, what: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise RecordError(
            f"{where}: {what} {value!r} is not valid Unicode text (lone surrogate at character {error.start})"
        ) from None


def check_metadata_value(value: Any, *, where: str) -> None:
    """Refuse a metadata record the serving pods could not return exactly, naming the field.

    Allowed: dicts with string keys, lists (tuples), strings, booleans, None, integers from
    -2**63 to 2**64-1, finite floats, nested at most MAX_METADATA_DEPTH levels. Raises RecordError
    whose message starts with `where` and names the field's path (`account`, `tags[2]`).
    """
    _check_value(value, where=where, path="", depth=0)


def _check_value(value: Any, *, where: str, path: str, depth: int) -> None:
    field = path or "the record"
    if depth > MAX_METADATA_DEPTH:
        raise RecordError(f"{where}: {field} is nested more than {MAX_METADATA_DEPTH} levels deep")
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if not METADATA_INT_MIN <= value <= METADATA_INT_MAX:
            raise RecordError(
                f"{where}: {field}: the integer {value} does not fit 64 bits ({METADATA_INT_MIN} .. "
                f"{METADATA_INT_MAX}); store it as a string"
            )
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RecordError(f"{where}: {field}: {value!r} is not a finite number (JSON has no NaN or Infinity)")
        return
    if isinstance(value, str):
        _check_text(value, where=where, what=field)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise RecordError(
                    f"{where}: {field} has the key {key!r} of type {type(key).__name__}; keys must be strings"
                )
            _check_text(key, where=where, what=f"key of {field}")
            _check_value(item, where=where, path=f"{path}.{key}" if path else key, depth=depth + 1)
        return
    if isinstance(value, (list, tuple)):
        for number, item in enumerate(value):
            _check_value(item, where=where, path=f"{path}[{number}]", depth=depth + 1)
        return
    raise RecordError(
        f"{where}: {field}: {type(value).__name__} {value!r} is not a JSON value "
        "(expected dict, list, str, int, float, bool or None)"
    )


class IdMap(Mapping[int, ExternalId]):
    """Position in the FAISS index -> external id, with the reverse lookup.

    While every id is its own position (the default ids 0..n-1) the map holds a `range`: no
    per-id object at all. A Python list of int ids costs ~36 bytes per id (the int and its
    pointer): 350 MiB of a 10M-vector build, and again in every `serve --workers` process. Any
    other id turns it into a list. The reverse lookup (a dict of every id, ~70 MiB per million
    measured) is built on its first use, not by a bulk load into an empty map."""

    def __init__(self) -> None:
        self._ids: range | list[ExternalId] = range(0)
        self._positions: dict[ExternalId, int] | None = None  # built by _reverse() when first needed
        self._lock = threading.Lock()  # a reader building the lookup while a writer extends
        # Every id an int above the one before (the default 0..n-1, sorted numeric ids): then a
        # duplicate is seen without the reverse lookup, which a chunked build would otherwise
        # build on its second chunk (~70 MiB per million ids).
        self._ascending = True

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
        """A copy of the ids by position (a list of n objects: see `view` for a large map)."""
        return list(self._ids)

    def view(self) -> Sequence[ExternalId]:
        """The ids by position without a copy: a `range` while every id is its position."""
        return self._ids

    def position_of(self, external_id: ExternalId) -> int | None:
        ids = self._ids
        if isinstance(ids, range):
            return _range_position(ids, external_id)
        return self._reverse().get(external_id)

    def external(self, position: int) -> ExternalId | None:
        if 0 <= position < len(self._ids):
            return self._ids[position]
        return None

    def check_new(self, ids: Sequence[ExternalId]) -> None:
        """Refuse ids already present or repeated in `ids`, before anything is added."""
        if self._ascending and _ascending_ints(ids, after=self._ids[-1] if self._ids else None):
            return  # each new id is above every id before it: none can repeat
        seen: set[ExternalId] = set()
        for external_id in ids:
            if external_id in seen or (self._ids and self.position_of(external_id) is not None):
                raise RecordError(f"ids: duplicate id {external_id!r}")
            seen.add(external_id)

    def extend(self, ids: Sequence[ExternalId]) -> None:
        with self._lock:
            self._ascending = self._ascending and _ascending_ints(ids, after=self._ids[-1] if self._ids else None)
            current = self._ids
            if isinstance(current, range) and _continues(current, ids):
                self._ids = range(len(current) + len(ids))
                return
            listed: list[ExternalId] = current if isinstance(current, list) else list(current)
            positions = self._positions
            for external_id in ids:
                if positions is not None:
                    positions[external_id] = len(listed)
                listed.append(external_id)
            self._ids = listed

    def _reverse(self) -> dict[ExternalId, int]:
        positions = self._positions
        if positions is None:
            with self._lock:
                if self._positions is None:
                    self._positions = {external_id: position for position, external_id in enumerate(self._ids)}
                positions = self._positions
        return positions


def _range_position(ids: range, external_id: Any) -> int | None:
    """The position of `external_id` in `ids` (each id its position) with a dict's equality, as
    the list form's reverse lookup answers: numpy's int64(3) and 3.0 find 3, "3" finds nothing."""
    try:
        as_int = int(external_id)
    except (TypeError, ValueError, OverflowError):
        return None
    return as_int if as_int == external_id and as_int in ids else None


def _continues(current: range, ids: Sequence[ExternalId]) -> bool:
    """Whether `ids` are the positions right after `current`: len(current), len(current)+1, ..."""
    if isinstance(ids, range):
        return ids.step == 1 and ids.start == len(current)
    return all(type(value) is int and value == position for position, value in enumerate(ids, start=len(current)))


def are_positions(ids: Sequence[ExternalId]) -> bool:
    """Whether every id is its own position, 0..len(ids)-1 (the default ids)."""
    return _continues(range(0), ids)


def _ascending_ints(ids: Sequence[ExternalId], *, after: ExternalId | None) -> bool:
    """Whether `ids` are ints, each above the one before it and the first above `after`."""
    if after is not None and type(after) is not int:
        return False
    if isinstance(ids, range):
        return ids.step > 0 and (after is None or not ids or ids.start > after)
    previous = after
    for value in ids:
        if type(value) is not int or (previous is not None and value <= previous):
            return False
        previous = value
    return True


def prepare_ids(ids: Any, *, count: int, start: int) -> Sequence[ExternalId]:
    """The external ids for `count` new vectors: as given (a list), or range(start, start + count)."""
    if ids is None:
        return range(start, start + count)
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
        check_metadata_value(value, where=f"metadata for id {external_id!r}")
        result[external_id] = value
    return result
