"""Offline validation of FaissIndex resources, as the API server and the operator would judge them.

Three checks, in the order the API server applies them: the CRD's OpenAPI schema (jsonschema; an
OpenAPI v3.0 schema is JSON Schema draft 4 plus extensions the validator ignores), the CRD's CEL
rules (cel-python, evaluated only when the schema passed, as a CEL rule assumes its node's types),
and the pydantic models the operator parses the spec with. Every problem names its source, the
document's position and the camelCase field. Both schema and rules come from the models
(`crd.resource_schema()`), so they are the ones `faiss-operator crd` writes.

jsonschema and cel-python are the `validate` extra (`pip install 'faiss-operator[validate]'`):
the operator, build and serving pods never need them.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import celpy
import jsonschema
import pydantic
import yaml
from celpy import adapter, celtypes, evaluation

from faiss_operator.api import crd, naming, resource
from faiss_operator.api import spec as api_spec

# metadata.name of a namespaced custom resource: a DNS-1123 subdomain (the API server's check).
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclasses.dataclass(frozen=True)
class Problem:
    """One reason a document would be refused. `document` counts from 1 within `source`;
    `field` is a dotted camelCase path (`spec.config.efSearch`), empty for the whole document."""

    source: str
    document: int
    name: str | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}: document {self.document}"
        if self.name:
            where += f" (FaissIndex {self.name})"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


@dataclasses.dataclass(frozen=True)
class Report:
    """What a validation saw: how many FaissIndex objects, how many other objects skipped, and
    the problems found (empty when every FaissIndex would be accepted)."""

    checked: int = 0
    skipped: int = 0
    problems: tuple[Problem, ...] = ()

    def __add__(self, other: Report) -> Report:
        return Report(self.checked + other.checked, self.skipped + other.skipped, self.problems + other.problems)


def validate_text(text: str, *, source: str) -> Report:
    """Every FaissIndex among the YAML or JSON documents of `text` (a `kind: List` is opened).

    Other kinds are counted as skipped; a document that does not parse, or is not a mapping, is a
    problem. Never raises for bad input.
    """
    report = Report()
    for position, document, error in _documents(text):
        if error is not None:
            report += Report(problems=(Problem(source, position, None, "", error),))
            continue
        for item in _objects(document):
            report += _validate_one(item, source=source, document=position)
    return report


def validate_object(obj: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The problems of one FaissIndex object as (field, message) pairs; empty when it is valid."""
    problems = _metadata_problems(obj)
    by_schema = schema_problems(obj)
    problems += by_schema
    by_rules = [] if by_schema else rule_failures(obj)
    spec = obj.get("spec")
    by_models = model_problems(spec) if isinstance(spec, Mapping) else []
    # The models mirror the schema and the CEL rules: a problem the schema found is said once (in
    # the schema's words, as the API server says it); a CEL rule's finding is said in the model's
    # more precise words (the key, the values) when the model found it too.
    refused = {field for field, _ in by_schema}
    by_models = [p for p in by_models if not any(_within(p[0], field) for field in refused)]
    for field, message in by_rules:
        if not any(_within(model_field, field) for model_field, _ in by_models):
            problems.append((field, message))
    problems += by_models
    return _unique(problems)


# --- documents -----------------------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key repeated in one mapping is an error, as kubectl's
    strict decoding makes it (PyYAML alone keeps the last value, silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"mapping key {key!r} appears more than once", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _documents(text: str) -> Iterator[tuple[int, Any, str | None]]:
    """(position from 1, parsed document or None, error or None); stops at a YAML error."""
    position = 0
    try:
        for document in yaml.load_all(text, Loader=_UniqueKeyLoader):
            position += 1
            if document is None:
                continue
            if not isinstance(document, dict):
                yield position, None, f"not a Kubernetes object (a YAML {type(document).__name__})"
                continue
            yield position, document, None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        yield position + 1, None, f"not valid YAML{where}: {problem}"


def _objects(document: dict[str, Any]) -> list[Any]:
    if document.get("kind") == "List" and isinstance(document.get("items"), list):
        return list(document["items"])
    return [document]


def _validate_one(obj: Any, *, source: str, document: int) -> Report:
    if not isinstance(obj, dict):
        return Report(problems=(Problem(source, document, None, "", "a List item that is not an object"),))
    if obj.get("kind") != resource.KIND or not str(obj.get("apiVersion", "")).startswith(f"{resource.GROUP}/"):
        return Report(skipped=1)
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) and isinstance(metadata.get("name"), str) else None
    problems = tuple(Problem(source, document, name, field, message) for field, message in validate_object(obj))
    return Report(checked=1, problems=problems)


# --- the checks ----------------------------------------------------------------------------------


def _metadata_problems(obj: Mapping[str, Any]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    if obj.get("apiVersion") != resource.API_VERSION:
        problems.append(("apiVersion", f"must be {resource.API_VERSION} (the only version the CRD serves)"))
    for key in obj:
        if key not in ("apiVersion", "kind", "metadata", "spec", "status"):
            problems.append((str(key), "unknown field (kubectl's default strict field validation refuses it)"))
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping):
        return [*problems, ("metadata", "required: an object with at least metadata.name")]
    name = metadata.get("name")
    if name is None:
        if not metadata.get("generateName"):
            problems.append(("metadata.name", "required"))
    elif not isinstance(name, str) or len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        problems.append(
            ("metadata.name", f"{name!r} is not a DNS-1123 subdomain (lower case a-z, 0-9, '-' and '.', at most 253)")
        )
    return problems


@functools.cache
def _schema() -> dict[str, Any]:
    return crd.resource_schema()


@functools.cache
def _validator() -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator(_schema())


def _without_status(obj: Mapping[str, Any]) -> dict[str, Any]:
    # The API server ignores status on create and update (the status subresource); so does this.
    return {k: v for k, v in obj.items() if k != "status"}


_LONG = 120


def _schema_problem(error: jsonschema.ValidationError) -> tuple[str, str]:
    field = _path(error.absolute_path)
    if error.validator == "required":
        missing = re.match(r"'(.+)' is a required property", error.message)
        if missing:
            return _path([*error.absolute_path, missing.group(1)]), "required"
    if error.validator in ("maxItems", "minItems") and isinstance(error.instance, list):
        bound = "at most" if error.validator == "maxItems" else "at least"
        return field, f"has {len(error.instance)} items; {bound} {error.validator_value} allowed"
    if error.validator in ("maxLength", "minLength") and isinstance(error.instance, str):
        bound = "at most" if error.validator == "maxLength" else "at least"
        return field, f"is {len(error.instance)} characters long; {bound} {error.validator_value} allowed"
    if len(error.message) > _LONG:  # jsonschema quotes the whole value
        shown = repr(error.instance)
        return field, error.message.replace(shown, shown[: _LONG // 2] + "...") if shown in error.message else (
            error.message[:_LONG] + "..."
        )
    return field, error.message


def _path(parts: Sequence[Any]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _within(field: str, parent: str) -> bool:
    return field == parent or field.startswith(f"{parent}.") or field.startswith(f"{parent}[")


def _is_sorted(values: celtypes.ListType) -> celtypes.BoolType:
    # The Kubernetes CEL library's isSorted(), which cel-python does not ship.
    items: list[Any] = list(values)
    return celtypes.BoolType(all(a <= b for a, b in zip(items, items[1:])))


_EACH_ITEM, _EACH_VALUE = "[]", "{}"  # path steps: every item of a list, every value of a map


@functools.cache
def _rules() -> tuple[tuple[tuple[str, ...], str, str, Any], ...]:
    """(path from the root, rule, message, compiled program) for every CEL rule; a path step is a
    property name, `[]` (each list item) or `{}` (each map value)."""
    environment = celpy.Environment()
    found: list[tuple[tuple[str, ...], str, str, Any]] = []

    def walk(node: Mapping[str, Any], path: tuple[str, ...]) -> None:
        for rule in node.get("x-kubernetes-validations", []):
            program = environment.program(environment.compile(rule["rule"]), functions={"isSorted": _is_sorted})
            found.append((path, rule["rule"], rule["message"], program))
        for name, child in node.get("properties", {}).items():
            walk(child, (*path, name))
        if isinstance(node.get("items"), dict):
            walk(node["items"], (*path, _EACH_ITEM))
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], (*path, _EACH_VALUE))

    walk(_schema(), ())
    return tuple(found)


def _values_at(value: Any, path: tuple[str, ...], where: list[Any]) -> Iterator[tuple[list[Any], Any]]:
    """(field path, value) for every node `path` reaches in `value`; absent nodes are left out, as
    the API server evaluates a rule only where its node is present."""
    if value is None:
        return
    if not path:
        yield where, value
        return
    step, rest = path[0], path[1:]
    if step == _EACH_ITEM and isinstance(value, list):
        for index, item in enumerate(value):
            yield from _values_at(item, rest, [*where, index])
    elif step == _EACH_VALUE and isinstance(value, Mapping):
        for key, item in value.items():
            yield from _values_at(item, rest, [*where, key])
    elif isinstance(value, Mapping):
        yield from _values_at(value.get(step), rest, [*where, step])


def schema_problems(obj: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field, message) for each way `obj` (its status left out) breaks the CRD's OpenAPI schema."""
    return [_schema_problem(error) for error in _validator().iter_errors(_without_status(obj))]


def rule_failures(obj: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(path of the rule's node, the rule's message) for each CEL rule `obj` fails; a rule that
    cannot be evaluated (a value of the wrong type) is reported as such."""
    return list(_rule_failures(obj))


def model_problems(spec: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field, message) for each problem the operator's models find in `spec`."""
    return list(_model_problems(spec))


def _rule_failures(obj: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    for path, rule, message, program in _rules():
        for where, value in _values_at(obj, path, []):
            field = _path(where)
            try:
                result = program.evaluate({"self": adapter.json_to_cel(value)})
            except evaluation.CELEvalError as error:
                yield field, f"rule {rule!r} could not be evaluated: {error}"
                continue
            if not isinstance(result, celtypes.BoolType) or not result:
                yield field, message


def _model_problems(spec: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    try:
        api_spec.FaissIndexSpec.from_wire(spec)
    except pydantic.ValidationError as error:
        for item in error.errors():
            loc, message = naming.located(item, api_spec.FaissIndexSpec)
            if loc:
                yield _path(["spec", *loc]), message
            else:  # a model-level rule; its message starts with the field it is about
                field, _, rest = message.partition(":")
                yield (f"spec.{field}", rest.strip()) if rest and " " not in field else ("spec", message)


def _unique(problems: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return list(dict.fromkeys(problems))
