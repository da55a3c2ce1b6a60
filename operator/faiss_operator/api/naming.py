"""The one mapping between the resource's camelCase field names and Python's snake_case.

Every model of the resource derives from `WireModel`, whose alias generator is `to_camel`; index
config keys (which belong to the index layer and stay snake_case there) cross the boundary with
`config_to_wire` / `config_from_wire`, built from the same function so the two can never drift.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pydantic

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
