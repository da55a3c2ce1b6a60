"""The one mapping between the resource's camelCase field names and Python's snake_case.

Every model of the resource derives from `WireModel`, whose alias generator is `to_camel`; index
config keys (which belong to the index layer and stay snake_case there) cross the boundary with
`config_to_wire` / `config_from_wire`, built from the same function so the two can never drift.
"""

from __future__ import annotations

import difflib
import re
import typing
from collections.abc import Iterator, Mapping
from typing import Any, Self

import pydantic
import pydantic_core

from faiss_operator.index import config as index_config


def to_camel(snake: str) -> str:
    """`ef_construction` -> `efConstruction`, `p99_latency_ms` -> `p99LatencyMs`."""
    head, *rest = snake.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


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
    """The model a field's annotation holds (through Optional, Annotated, list and dict)."""
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return annotation
    for argument in typing.get_args(annotation):
        found = _model_in(argument)
        if found is not None:
            return found
    return None


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


def _all_config_keys() -> list[str]:
    keys: set[str] = set()
    for name in index_config.INDEX_TYPES:
        keys.update(index_config.config_keys(name))
    return sorted(keys)


CONFIG_KEYS_SNAKE: tuple[str, ...] = tuple(_all_config_keys())
CONFIG_KEY_TO_WIRE: dict[str, str] = {key: to_camel(key) for key in CONFIG_KEYS_SNAKE}
CONFIG_KEY_FROM_WIRE: dict[str, str] = {wire: key for key, wire in CONFIG_KEY_TO_WIRE.items()}


def wire_config_keys(index_type: str) -> list[str]:
    """The camelCase config keys that `index_type` accepts."""
    return [CONFIG_KEY_TO_WIRE[key] for key in index_config.config_keys(index_type)]


def config_from_wire(values: Mapping[str, Any]) -> dict[str, Any]:
    """camelCase config keys to the index layer's snake_case; an unknown key is named in the error."""
    converted: dict[str, Any] = {}
    for key, value in values.items():
        if key not in CONFIG_KEY_FROM_WIRE:
            valid = ", ".join(sorted(CONFIG_KEY_FROM_WIRE))
            raise index_config.ConfigError(f"config.{key}: unknown key; valid keys: {valid}")
        converted[CONFIG_KEY_FROM_WIRE[key]] = value
    return converted


def config_to_wire(values: Mapping[str, Any]) -> dict[str, Any]:
    """The index layer's snake_case config to camelCase, dropping `index_type` and unset values."""
    return {
        CONFIG_KEY_TO_WIRE.get(key, to_camel(key)): value
        for key, value in values.items()
        if key != "index_type" and value is not None
    }
