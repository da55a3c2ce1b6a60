"""The Argo CD health check for FaissIndex, run as Argo CD runs it (Lua 5.1, restricted libraries).

The check's own tests (`health_test.yaml`, Argo CD's format) run on the committed samples; the same
rules are then applied to the statuses the operator's decision writes now, and to malformed
objects, which must never make the script fail (Argo CD would show health Unknown).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from faiss_operator.api import resource as api_resource
from faiss_operator.api import status as api_status
from faiss_operator.controller.decision import conditions

from tests.gitops import argocd_lua, health_samples

CHECK = health_samples.ARGOCD
SCRIPT = (CHECK / "health.lua").read_text()
TESTS: list[dict[str, Any]] = yaml.safe_load((CHECK / "health_test.yaml").read_text())["tests"]
ARGOCD_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}


def _load(path: Path) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load(path.read_text())
    return body


@pytest.mark.parametrize("case", TESTS, ids=lambda case: case["inputPath"])
def test_health_test_yaml(case: dict[str, Any]) -> None:
    obj = _load(CHECK / case["inputPath"])
    assert argocd_lua.run_health(SCRIPT, obj) == case["healthStatus"]


def test_the_tests_cover_every_health_the_check_gives_and_every_sample() -> None:
    assert {case["healthStatus"]["status"] for case in TESTS} == {"Healthy", "Progressing", "Degraded", "Suspended"}
    listed = {case["inputPath"] for case in TESTS}
    on_disk = {f"testdata/{p.name}" for p in (CHECK / "testdata").glob("*.yaml")}
    assert listed == on_disk


@pytest.mark.parametrize("name", sorted(health_samples.SAMPLES))
def test_health_of_the_status_the_decision_writes_now(name: str) -> None:
    body = health_samples.SAMPLES[name].build()
    assert argocd_lua.run_health(SCRIPT, body) == health_samples.expected_health(name, body)


def _without_empty(status: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in status.items() if value not in ({}, [])}


@pytest.mark.parametrize("path", sorted((CHECK / "testdata").glob("*.yaml")), ids=lambda p: p.name)
def test_every_sample_is_a_faissindex_the_operator_can_have_written(path: Path) -> None:
    body = _load(path)
    assert (body["apiVersion"], body["kind"]) == ("faiss.dev/v1alpha1", "FaissIndex")
    api_resource.parse_spec(body["spec"])
    if "status" not in body:
        return
    status = api_status.FaissIndexStatus.model_validate(body["status"])
    if status.observed_generation == 0:
        return  # the CRD's default status of a new object: the operator has written nothing yet
    # A merge patch of an empty map or list leaves no field behind: the stored status of a real
    # operator (testdata/captured_*) lacks the empty handledAnnotations and scaleDowns it wrote.
    assert _without_empty(status.to_wire()) == _without_empty(body["status"])
    assert [c.type for c in status.conditions] == list(conditions.ORDER)
    reasons = {value for name, value in vars(conditions).items() if name.isupper() and isinstance(value, str)}
    assert {c.reason for c in status.conditions} <= reasons


def test_the_configmap_snippet_carries_the_same_script_without_open_libraries() -> None:
    config_map = _load(CHECK.parents[1] / "argocd-cm.yaml")
    assert (config_map["kind"], config_map["metadata"]["name"]) == ("ConfigMap", "argocd-cm")
    assert config_map["data"] == {"resource.customizations.health.faiss.dev_FaissIndex": SCRIPT}


# --- the sandbox is Argo CD's: a script that needs a library fails here as it would there ---


@pytest.mark.parametrize(
    "script",
    [
        "return {status = string.upper('healthy')}",
        "return {status = ('healthy'):upper()}",
        "return {status = tostring(math.floor(1.5))}",
        "return {status = tostring(io.stdout)}",
    ],
)
def test_a_script_that_needs_a_library_fails_without_open_libs_and_runs_with_them(script: str) -> None:
    with pytest.raises(argocd_lua.LuaError, match="attempt to index"):
        argocd_lua.run_health(script, {})
    assert isinstance(argocd_lua.run_health(script, {}, open_libs=True)["status"], str)


def test_a_script_returning_no_table_is_refused() -> None:
    with pytest.raises(argocd_lua.LuaError, match="expect table output"):
        argocd_lua.run_health("return 'Healthy'", {})


# --- odd objects: the check answers, it never fails ---

META = {"name": "alerts", "generation": 3}


@pytest.mark.parametrize(
    ("obj", "want"),
    [
        (
            {"metadata": META, "status": {}},
            {"status": "Progressing", "message": "Waiting for the operator to observe the FaissIndex"},
        ),
        (
            {"metadata": META, "status": {"observedGeneration": 3}},
            {"status": "Progressing", "message": "Waiting for a revision to serve"},
        ),
        (
            {"metadata": META, "status": {"observedGeneration": 3, "conditions": []}},
            {"status": "Progressing", "message": "Waiting for a revision to serve"},
        ),
        (
            {"metadata": META, "status": {"observedGeneration": 3, "phase": "Failed"}},
            {"status": "Degraded", "message": "phase Failed"},
        ),
        (
            {
                "metadata": {"name": "alerts"},
                "status": {"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "True"}]},
            },
            {"status": "Healthy", "message": "Ready"},
        ),
        (
            {
                "metadata": META,
                "status": {
                    "observedGeneration": 3,
                    "conditions": [{"type": "Stalled", "status": "True", "reason": "RevisionFailed", "message": ""}],
                },
            },
            {"status": "Degraded", "message": "Stalled"},
        ),
        (
            {
                "metadata": META,
                "status": {
                    "observedGeneration": 3,
                    "conditions": [
                        {"type": "Ready", "status": "False", "reason": "NotServing", "message": "no ready replica"},
                        {"type": "Degraded", "status": "True", "reason": "ReplicasUnavailable", "message": "0/2 ready"},
                        {"type": "Reconciling", "status": "False", "reason": "Idle"},
                    ],
                },
            },
            {"status": "Degraded", "message": "0/2 ready"},
        ),
    ],
    ids=[
        "empty status",
        "observed but no conditions",
        "an empty condition list",
        "phase Failed without conditions",
        "no generation in metadata",
        "a condition with an empty message",
        "nothing serving and nothing in progress",
    ],
)
def test_odd_objects_get_an_answer(obj: dict[str, Any], want: dict[str, str]) -> None:
    assert argocd_lua.run_health(SCRIPT, obj) == want
