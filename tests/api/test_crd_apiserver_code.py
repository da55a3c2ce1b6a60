"""The generated CRD judged by the API server's own code (hack/crdcheck, Go, in process).

Slower than the Python checks beside it (a Go build, cached after the first), so marked slow;
it proves what the Python checks approximate: the API server accepts the CRD (structural schema,
CEL rules compile within their cost limits), prunes and defaults the samples the way the models
do, and refuses each bad sample with the message a user will see.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from faiss_operator.api import crd, resource

from tests.api import samples

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "hack" / "crdcheck"
CRD = ROOT / "crds" / "faissindexes.faiss.dev.yaml"

pytestmark = pytest.mark.slow


def _with_extra(path: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(samples.GOOD["the smallest spec"])
    node = body
    *parents, last = path.split(".")
    for key in parents:
        node = node[key]
    node[last] = value
    return body


# Fields in the wrong place: pruned by the API server, so refused only under strict field
# validation (kubectl's default); tests/integration checks that against a real API server.
UNKNOWN_FIELDS: dict[str, tuple[dict[str, Any], list[str]]] = {
    "idsUri under spec": (_with_extra("spec.idsUri", "file:///data/ids.txt"), ["spec.idsUri"]),
    "metadataUri under spec": (_with_extra("spec.metadataUri", "file:///data/m.jsonl"), ["spec.metadataUri"]),
    "a misspelt evaluation key": (_with_extra("spec.evaluation", {"minRecal": 0.9}), ["spec.evaluation.minRecal"]),
}


@pytest.fixture(scope="module")
def judged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    go = shutil.which("go")
    if go is None:
        pytest.skip("needs the Go toolchain to build hack/crdcheck")
    work = tmp_path_factory.mktemp("crdcheck")
    binary = work / "crdcheck"
    build = subprocess.run(
        [go, "build", "-o", str(binary), "."], cwd=TOOL, capture_output=True, text=True, timeout=1200
    )
    assert build.returncode == 0, build.stderr
    bodies = {f"good: {name}": body for name, body in samples.GOOD.items()}
    bodies.update({f"bad: {name}": bad.body for name, bad in samples.BAD.items()})
    bodies.update({f"unknown: {name}": body for name, (body, _) in UNKNOWN_FIELDS.items()})
    (work / "samples.json").write_text(json.dumps(bodies))
    run = subprocess.run(
        [str(binary), str(CRD), str(work / "samples.json")], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    result: dict[str, Any] = json.loads(run.stdout)
    return result


def _without_empty(value: Any) -> Any:
    if isinstance(value, dict):
        cleaned = {k: _without_empty(v) for k, v in value.items()}
        return {k: v for k, v in cleaned.items() if v not in ([], {})}
    return value


def test_the_api_server_accepts_the_crd(judged: dict[str, Any]) -> None:
    assert judged["crdErrors"] == []


@pytest.mark.parametrize("name", sorted(samples.GOOD))
def test_good_samples_are_accepted_and_defaulted_as_the_models_default_them(judged: dict[str, Any], name: str) -> None:
    outcome = judged["samples"][f"good: {name}"]
    assert outcome["errors"] == []
    model = resource.parse_spec(samples.GOOD[name]["spec"]).to_wire()
    assert _without_empty(outcome["spec"]) == _without_empty(model)


def _rule_messages() -> list[str]:
    messages = []

    def walk(node: dict[str, Any]) -> None:
        messages.extend(rule["message"] for rule in node.get("x-kubernetes-validations", []))
        for child in node.get("properties", {}).values():
            walk(child)
        if "items" in node:
            walk(node["items"])

    walk(crd.resource_schema())
    return messages


RULE_MESSAGES = _rule_messages()


@pytest.mark.parametrize("name", sorted(samples.BAD))
def test_bad_samples_are_refused_by_the_check_we_expect(judged: dict[str, Any], name: str) -> None:
    bad = samples.BAD[name]
    errors = judged["samples"][f"bad: {name}"]["errors"]
    assert errors, f"{name} was accepted"
    by_rule = [e for e in errors if any(message in e for message in RULE_MESSAGES)]
    if bad.refused_by == "cel":
        assert by_rule == errors, errors
    else:
        assert by_rule == [], errors


@pytest.mark.parametrize("name", sorted(UNKNOWN_FIELDS))
def test_fields_in_the_wrong_place_are_unknown_to_the_api_server(judged: dict[str, Any], name: str) -> None:
    outcome = judged["samples"][f"unknown: {name}"]
    assert outcome["unknownFields"] == UNKNOWN_FIELDS[name][1]
    assert "idsUri" not in outcome["spec"] and "metadataUri" not in outcome["spec"]


def test_no_good_sample_has_an_unknown_field(judged: dict[str, Any]) -> None:
    assert {name: judged["samples"][f"good: {name}"]["unknownFields"] for name in samples.GOOD} == {
        name: [] for name in samples.GOOD
    }
