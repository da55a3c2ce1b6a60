"""docs/migration-from-v0.8.md names real things: every variable it maps is one the operator reads,
every `spec.config` key and `ml.faiss` value exists, and its YAML blocks are what they claim."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from faiss_operator.index import config as index_config
from faiss_operator.index import settings as index_settings

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "migration-from-v0.8.md").read_text()
SCHEMA = json.loads((ROOT / "charts" / "faiss-operator" / "values.schema.json").read_text())
SNAKE_KEYS = {k for t in index_config.INDEX_TYPES for k in index_config.config_keys(t)}


def test_every_variable_named_is_read_by_the_operator() -> None:
    variables = set(re.findall(r"\bFAISS_[A-Z_]+[A-Z]\b", DOC))
    known = {index_settings.ENV_INDEX_TYPE, index_settings.ENV_CONFIG_FILE, *index_settings.LEGACY_ENV_KEYS}
    known |= {index_settings.ENV_CONFIG_PREFIX + key.upper() for key in SNAKE_KEYS}
    known.add(index_settings.ENV_CONFIG_PREFIX.rstrip("_") + "_<KEY>")
    assert variables - {"FAISS_CONFIG"} <= known, variables - known


def test_every_config_key_named_in_the_resource_exists() -> None:
    wire = {index_config.label(key, by_alias=True) for key in index_config.all_config_keys()}
    named = set(re.findall(r"spec\.config\.(\w+)", DOC))
    # "`spec.config.mPq`, `nSubquantizers`, `mHnsw`": the keys after the first are named bare.
    for row in re.findall(r"`spec\.config\.\w+`, ((?:`\w+`(?:, )?)+)", DOC):
        named |= set(re.findall(r"`(\w+)`", row))
    assert named and named <= wire, named - wire


def test_every_chart_value_named_exists_in_the_chart_schema() -> None:
    faiss = SCHEMA["properties"]["ml"]["properties"]["faiss"]["properties"]
    for path in set(re.findall(r"ml\.faiss\.([\w.]+\w)", DOC)):
        node = faiss
        for part in path.split("."):
            assert part in node, path
            node = node[part].get("properties", {})


def test_the_helm_values_block_is_valid_for_the_chart() -> None:
    import jsonschema

    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", DOC, re.DOTALL)]
    (values,) = [b for b in blocks if isinstance(b, dict) and "ml" in b]
    jsonschema.Draft7Validator(SCHEMA).validate(values)
    assert values["ml"]["faiss"]["indexType"] == "HNSW"
