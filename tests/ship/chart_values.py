"""What the chart's `ml.faiss` values must accept, derived from the index layer's config models,
so that values.schema.json cannot drift from the keys and bounds the operator really enforces."""

from __future__ import annotations

from typing import Any

from faiss_operator.index import config as index_config

LEGACY_KEYS = ("nlist", "nprobe")  # ml.faiss.nlist / nprobe: the v0.8 Helm keys, beside config


def _bounds(snake: str) -> dict[str, Any]:
    """The widest bounds any index type allows for the key `snake`: JSON Schema of its value."""
    found: dict[str, Any] = {}
    for index_type in index_config.INDEX_TYPES:
        model = index_config.config_model_for(index_type)
        schema = model.model_json_schema(by_alias=False)  # snake_case keys, as `snake` is
        if snake not in schema["properties"]:
            continue
        node = schema["properties"][snake]
        node = next((n for n in node.get("anyOf", [node]) if n.get("type") != "null"), node)
        if "$ref" in node:
            enum = schema["$defs"][node["$ref"].split("/")[-1]]["enum"]
            found = {"type": "string", "enum": enum}
            continue
        found.setdefault("type", node["type"])
        if "minimum" in node:
            found["minimum"] = min(found.get("minimum", node["minimum"]), node["minimum"])
        if "maximum" in node:
            found["maximum"] = max(found.get("maximum", node["maximum"]), node["maximum"])
    return found


def config_properties() -> dict[str, dict[str, Any]]:
    """camelCase key -> JSON Schema, for every key of every index type."""
    keys = sorted({k for t in index_config.INDEX_TYPES for k in index_config.config_keys(t)})
    return {index_config.label(k, by_alias=True): _bounds(k) for k in keys}


def legacy_properties() -> dict[str, dict[str, Any]]:
    """ml.faiss.nlist and nprobe: as in the IVF config, or null (unset)."""
    return {key: _nullable(_bounds(key)) for key in LEGACY_KEYS}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    typed = dict(schema)
    typed["type"] = [schema["type"], "null"]
    if "enum" in typed:
        typed["enum"] = [*schema["enum"], None]
    return typed
