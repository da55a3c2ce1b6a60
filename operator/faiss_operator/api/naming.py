"""The one mapping between the resource's camelCase field names and Python's snake_case.

Every model of the resource derives from `WireModel`, whose alias generator is `to_camel`:
pydantic's own, the one the index layer's typed configs use too (index/config.py), so spec.config
and status.revisions[].config hold those models with no conversion and the names cannot drift.
"""

from __future__ import annotations

import difflib
import re
import typing
from collections.abc import Iterator
from typing import Any, Self

import pydantic
import pydantic.alias_generators
import pydantic_core


def to_camel(snake: str) -> str:
    """`ef_construction` -> `efConstruction`, `p99_latency_ms` -> `p99LatencyMs`."""
    return pydantic.alias_generators.to_camel(snake)


class WireModel(pydantic.BaseModel):
    """Base of every resource model: camelCase aliases, unknown fields refused, immutable."""

    model_config = pydantic.ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    def to_wire(self) -> dict[str, Any]:
        """The JSON shape Kubernetes stores: camelCase keys, unset optional fields left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    @classmethod
    def from_wire(cls, data: Any) -> Self:
        """Parse what a user writes or Kubernetes stores: camelCase names only, as the CRD's schema
        has them. A Python name (`min_recall`) is an unknown field there, as kubectl says; taken
        here, it would pass offline checks that the API server then refuses, or a client that
        drops unknown fields would lose it silently. Python code builds models by name."""
        return cls.model_validate(data, by_alias=True, by_name=False)


def _wire_names(model: type[pydantic.BaseModel]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


def _model_in(annotation: Any) -> type[pydantic.BaseModel] | None:
    """The model a field's annotation holds (through Optional, Annotated, list and dict); in a
    union of models, the resource's own (a WireModel: spec.config's key-by-key schema rather than
    the index layer's typed configs beside it)."""
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return annotation
    found = [model for argument in typing.get_args(annotation) if (model := _model_in(argument)) is not None]
    return next((model for model in found if issubclass(model, WireModel)), found[0] if found else None)


def _model_at(root: type[pydantic.BaseModel], path: Iterator[int | str]) -> type[pydantic.BaseModel] | None:
    model: type[pydantic.BaseModel] | None = root
    for part in path:
        if model is None:
            return None
        if isinstance(part, int):  # a list item
            continue
        field = next((f for name, f in model.model_fields.items() if (f.alias or name) == part), None)
        model = None if field is None else _model_in(field.annotation)
    return model


def did_you_mean(key: str, candidates: list[str]) -> str:
    """` (did you mean minRecall?)` for a key close to one of `candidates` (the fields beside it)."""
    others = [name for name in candidates if name != key]
    if to_camel(key) in others:
        return f" (did you mean {to_camel(key)}?)"
    close = difflib.get_close_matches(key, others, n=1, cutoff=0.7)
    return f" (did you mean {close[0]}?)" if close else ""


def located(
    item: pydantic_core.ErrorDetails, root: type[pydantic.BaseModel]
) -> tuple[tuple[int | str, ...], str]:
    """(field path, message) of one validation error of a `root` model. A validator of a mapping
    field that names the key at fault (`config.mPq: ...`, in the loc `config`) is placed at that key."""
    message = error_message(item, root)
    loc = tuple(item["loc"])
    if loc:
        at_key = re.match(rf"{re.escape(str(loc[-1]))}\.(\w+): (.*)", message, re.DOTALL)
        if at_key:
            return (*loc, at_key[1]), at_key[2]
    return loc, message


def error_message(item: pydantic_core.ErrorDetails, root: type[pydantic.BaseModel]) -> str:
    """The message of one validation error of a `root` model in the resource's words: an unknown
    field says so and names the field beside it that it resembles; a validator's message loses
    pydantic's `Value error, `."""
    if item["type"] == "extra_forbidden" and item["loc"]:
        parent = _model_at(root, iter(item["loc"][:-1]))
        return f"unknown field{did_you_mean(str(item['loc'][-1]), _wire_names(parent) if parent else [])}"
    return str(item["msg"]).removeprefix("Value error, ")
