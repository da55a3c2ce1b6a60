"""The generated CRD: equal to the committed file, structural, and right about good and bad specs.

The API server's own checks come with the integration tests; here the structural-schema rules
are checked in Python, sample resources are validated against the schema with jsonschema
(OpenAPI v3.0 is JSON Schema draft 4 plus extensions the validator ignores), and every CEL rule
is compiled and evaluated with cel-python against the same samples.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import pytest
import yaml
from celpy import celtypes
from faiss_operator import cli
from faiss_operator.api import crd, resource

from tests.api import samples

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "crds" / "faissindexes.faiss.dev.yaml"
GENERATED = crd.custom_resource_definition()
VERSION = GENERATED["spec"]["versions"][0]
SCHEMA = VERSION["schema"]["openAPIV3Schema"]
# The only places where the resource holds a free-form object.
FREE_FORM = {
    ".status.revisions[].config",
    # core/v1 Affinity and LabelSelector: the API server checks them in the pods
    ".spec.build.affinity",
    ".spec.build.topologySpreadConstraints[].labelSelector",
    ".spec.serving.affinity",
    ".spec.serving.topologySpreadConstraints[].labelSelector",
}
ALLOWED_KEYS = {
    "type", "description", "properties", "required", "items", "additionalProperties", "enum", "default",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "pattern",
    "minItems", "maxItems", "format", "anyOf", "x-kubernetes-validations", "x-kubernetes-int-or-string",
    "x-kubernetes-preserve-unknown-fields", "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
}  # fmt: skip


def nodes(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, child in schema.get("properties", {}).items():
        yield from nodes(child, f"{path}.{name}")
    if "items" in schema:
        yield from nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from nodes(schema["additionalProperties"], f"{path}{{}}")


# --- the file -----------------------------------------------------------------------------------


def test_the_committed_crd_is_the_generated_one() -> None:
    assert COMMITTED.read_text() == crd.render(), "run: faiss-operator crd"


def test_crd_check_fails_on_a_stale_file_and_passes_on_a_fresh_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "crd.yaml"
    assert cli.main(["crd", "--out", str(target)]) == 0
    assert cli.main(["crd", "--check", "--out", str(target)]) == 0
    target.write_text(target.read_text().replace("faissidx", "fidx"))
    assert cli.main(["crd", "--check", "--out", str(target)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert cli.main(["crd", "--out", "-"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == GENERATED


def test_names_scope_subresource_and_printer_columns() -> None:
    spec = GENERATED["spec"]
    assert GENERATED["metadata"]["name"] == "faissindexes.faiss.dev"
    assert (spec["group"], spec["scope"]) == ("faiss.dev", "Namespaced")
    assert spec["names"]["shortNames"] == ["fi", "faissidx"]
    assert (VERSION["name"], VERSION["served"], VERSION["storage"]) == ("v1alpha1", True, True)
    assert VERSION["subresources"] == {"status": {}}
    columns = [(c["name"], c["type"]) for c in VERSION["additionalPrinterColumns"]]
    assert columns == [
        ("Type", "string"), ("Phase", "string"), ("Revision", "string"), ("Recall", "number"),
        ("P99(ms)", "number"), ("Weight", "integer"), ("Age", "date"),
    ]  # fmt: skip
    # WEIGHT is the share traffic really gets (candidate ready / all ready), not the step's target.
    (weight,) = [c for c in VERSION["additionalPrinterColumns"] if c["name"] == "Weight"]
    assert weight["jsonPath"] == ".status.rollout.actualWeight"


@pytest.mark.parametrize("column", VERSION["additionalPrinterColumns"], ids=lambda c: c["name"])
def test_printer_columns_point_at_fields_of_the_schema(column: dict[str, str]) -> None:
    if column["jsonPath"].startswith(".metadata."):
        assert column["jsonPath"] == ".metadata.creationTimestamp" and column["type"] == "date"
        return
    node: dict[str, Any] = SCHEMA
    for part in column["jsonPath"].strip(".").split("."):
        node = node["properties"][part]
    assert node["type"] == column["type"]


# --- structural-schema rules -------------------------------------------------------------------


@pytest.mark.parametrize(("path", "node"), list(nodes(SCHEMA)), ids=lambda v: v if isinstance(v, str) else "")
def test_every_node_is_structural(path: str, node: dict[str, Any]) -> None:
    assert set(node) <= ALLOWED_KEYS, f"{path}: {set(node) - ALLOWED_KEYS}"
    if node.get("x-kubernetes-int-or-string"):
        assert node.get("anyOf", [{"type": "integer"}, {"type": "string"}]) == [{"type": "integer"}, {"type": "string"}]
    else:
        assert node.get("type") in {"object", "array", "string", "integer", "number", "boolean"}, f"{path}: untyped"
        assert "anyOf" not in node, f"{path}: anyOf outside int-or-string"
    assert not ("properties" in node and "additionalProperties" in node), (
        f"{path}: properties beside additionalProperties"
    )
    if node.get("x-kubernetes-preserve-unknown-fields"):
        assert path in FREE_FORM, f"{path}: preserve-unknown-fields where the shape is known"
    if node.get("type") == "array":
        assert "items" in node, f"{path}: array without items"
    if node.get("x-kubernetes-list-type") == "map":
        for key in node["x-kubernetes-list-map-keys"]:
            assert key in node["items"]["required"], f"{path}: map key {key} must be required"
    for bound in ("exclusiveMinimum", "exclusiveMaximum"):
        if bound in node:
            assert node[bound] is True and ("minimum" if bound == "exclusiveMinimum" else "maximum") in node


def test_free_form_nodes_exist() -> None:
    found = {path for path, node in nodes(SCHEMA) if node.get("x-kubernetes-preserve-unknown-fields")}
    assert found == FREE_FORM


@pytest.mark.parametrize(
    ("path", "node"),
    [(p, n) for p, n in nodes(SCHEMA) if "default" in n],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_defaults_are_valid_for_their_node(path: str, node: dict[str, Any]) -> None:
    jsonschema.Draft4Validator(node).validate(node["default"])


def test_nested_objects_default_to_empty_so_their_defaults_apply() -> None:
    spec = SCHEMA["properties"]["spec"]["properties"]
    for name in ("artifacts", "evaluation", "build", "serving", "rollout"):
        assert spec[name]["default"] == {}, name
    assert spec["rollout"]["properties"]["analysis"]["default"] == {}
    assert "default" not in spec["source"] and "default" not in spec["config"] and "default" not in spec["indexType"]


# --- samples against the schema and the CEL rules -----------------------------------------------

VALIDATOR = jsonschema.Draft4Validator(SCHEMA)
CEL = celpy.Environment()


def _is_sorted(values: celtypes.ListType) -> celtypes.BoolType:
    return celtypes.BoolType(all(a <= b for a, b in zip(values, values[1:])))


def cel_rules() -> list[tuple[str, dict[str, str]]]:
    return [(path, rule) for path, node in nodes(SCHEMA) for rule in node.get("x-kubernetes-validations", [])]


def value_at(body: Any, path: str) -> Any:
    node = body
    for part in path.strip(".").split(".") if path else []:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def failed_rules(body: dict[str, Any]) -> list[str]:
    failures = []
    for path, rule in cel_rules():
        value = value_at(body, path)
        if value is None:
            continue
        program = CEL.program(CEL.compile(rule["rule"]), functions={"isSorted": _is_sorted})
        result = program.evaluate({"self": celpy.json_to_cel(value)})
        assert isinstance(result, celtypes.BoolType), f"{rule['rule']} gave {result!r}"
        if not result:
            failures.append(rule["message"])
    return failures


@pytest.mark.parametrize("name", sorted(samples.GOOD))
def test_good_samples_pass_schema_and_rules(name: str) -> None:
    body = samples.GOOD[name]
    VALIDATOR.validate(body)
    assert failed_rules(body) == []


@pytest.mark.parametrize("name", sorted(n for n, b in samples.BAD.items() if b.refused_by == "schema"))
def test_bad_samples_are_refused_by_the_schema(name: str) -> None:
    assert list(VALIDATOR.iter_errors(samples.BAD[name].body)), f"{name} passed the schema"


@pytest.mark.parametrize("name", sorted(n for n, b in samples.BAD.items() if b.refused_by == "cel"))
def test_bad_samples_are_refused_by_a_cel_rule_with_an_actionable_message(name: str) -> None:
    body = samples.BAD[name].body
    VALIDATOR.validate(body)  # the schema alone lets it through: the rule is what refuses it
    failures = failed_rules(body)
    assert failures, f"{name} passed every CEL rule"
    assert all(len(message) > 20 for message in failures)


@pytest.mark.parametrize(("path", "rule"), cel_rules(), ids=lambda v: v if isinstance(v, str) else "")
def test_cel_rules_compile_and_name_only_fields_of_their_node(path: str, rule: dict[str, str]) -> None:
    CEL.compile(rule["rule"])
    assert rule["message"].strip()
    node: dict[str, Any] = SCHEMA
    for part in path.strip(".").split("."):
        node = node["properties"][part]
    for reference in re.findall(r"self((?:\.\w+)+)", rule["rule"]):
        target = node
        for part in reference.strip(".").split("."):
            if part in ("map", "all", "exists_one", "isSorted", "matches"):
                break
            target = target["properties"][part] if "properties" in target else target["items"]["properties"][part]


def test_a_cel_rule_per_index_type_refuses_foreign_config_keys() -> None:
    rules = SCHEMA["properties"]["spec"]["x-kubernetes-validations"]
    messages = [r["message"] for r in rules]
    for index_type in ("Flat", "IVF", "IVFPQ", "HNSW", "OPQ+HNSW"):
        assert any(f"indexType {index_type};" in m for m in messages), index_type


def test_the_schema_and_the_models_agree_on_every_sample() -> None:
    for body in samples.GOOD.values():
        resource.parse_spec(body["spec"])
    for name, bad in samples.BAD.items():
        with pytest.raises(resource.SpecError):
            resource.parse_spec(bad.body["spec"])
        refused_by_schema = bool(list(VALIDATOR.iter_errors(bad.body)))
        assert refused_by_schema == (bad.refused_by == "schema"), name


def test_a_field_in_the_wrong_place_is_unknown_to_the_schema_not_preserved() -> None:
    """`idsUri` directly under spec: the API server refuses it under field validation Strict
    (kubectl's default) and drops it with a warning otherwise, because no node on its path
    preserves unknown fields (tests/integration checks both against a real API server)."""
    spec = SCHEMA["properties"]["spec"]
    assert "idsUri" not in spec["properties"] and "metadataUri" not in spec["properties"]
    assert {"uri", "idsUri", "metadataUri"} <= set(spec["properties"]["source"]["properties"])
    for node in (SCHEMA, spec, spec["properties"]["source"]):
        assert not node.get("x-kubernetes-preserve-unknown-fields")
