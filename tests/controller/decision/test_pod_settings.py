"""What the operator puts in its pods: Pod Security `restricted` by default, the user's pod
settings for `build` and `serving`, and the PodDisruptionBudget as configured."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest
from faiss_operator.api import resource as api_resource
from faiss_operator.controller.decision import manifests, serving_memory

from tests.controller.builders import SETTINGS, make_resource, spec

RESOURCE = make_resource(spec())
ARTIFACT = "pvc://faiss-artifacts/alerts/k1"

RESTRICTED_POD = {
    "runAsNonRoot": True,
    "runAsUser": 65532,
    "runAsGroup": 65532,
    "fsGroup": 65532,
    "seccompProfile": {"type": "RuntimeDefault"},
}
RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}
TMP_VOLUME = {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}
TMP_MOUNT = {"name": "tmp", "mountPath": "/tmp"}

POD_SETTINGS: dict[str, Any] = {
    "nodeSelector": {"pool": "search"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "search", "effect": "NoSchedule"}],
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]
            }
        }
    },
    "topologySpreadConstraints": [
        {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway"}
    ],
    "priorityClassName": "search-critical",
    "runtimeClassName": "gvisor",
    "serviceAccountName": "faiss-reader",
    "imagePullSecrets": [{"name": "registry-credentials"}],
    "podAnnotations": {"prometheus.io/scrape": "true"},
    "podLabels": {"team": "search"},
    "podSecurityContext": {"runAsUser": 1000, "fsGroup": 2000},
    "securityContext": {"readOnlyRootFilesystem": False},
}


def parsed(**overrides: Any) -> Any:
    return api_resource.parse_spec(spec(**overrides))


def build_job(wire: dict[str, Any]) -> dict[str, Any]:
    return manifests.build_job(
        RESOURCE, api_resource.parse_spec(wire), revision="r1", attempt=0, artifact=ARTIFACT,
        index_type="HNSW", build_config={"m": 16}, image="img:1",
    )  # fmt: skip


def deployment(wire: dict[str, Any], measured: serving_memory.Measured | None = None) -> dict[str, Any]:
    return manifests.deployment(
        RESOURCE, api_resource.parse_spec(wire), revision="r1", artifact=ARTIFACT, search_params={},
        replicas=2, image="img:1", measured=measured,
    )  # fmt: skip


def cleanup(settings: Any = None) -> dict[str, Any]:
    return manifests.cleanup_job(
        RESOURCE, target=ARTIFACT, key="k1", image=SETTINGS.image, ttl_seconds=60, settings=settings
    )


def pod_of(manifest: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    pod = manifest["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return pod, container


@pytest.mark.parametrize("make", [lambda: build_job(spec()), lambda: deployment(spec()), lambda: cleanup()],
                         ids=["build", "serving", "cleanup"])  # fmt: skip
def test_every_pod_meets_the_restricted_profile_by_default_and_writes_only_to_tmp(make: Any) -> None:
    pod, container = pod_of(make())
    assert pod["securityContext"] == RESTRICTED_POD
    assert container["securityContext"] == RESTRICTED_CONTAINER
    assert pod["volumes"][-1] == TMP_VOLUME
    assert container["volumeMounts"][-1] == TMP_MOUNT
    assert container["env"] == [{"name": "TMPDIR", "value": "/tmp"}]
    for field in ("nodeSelector", "tolerations", "affinity", "topologySpreadConstraints", "priorityClassName",
                  "runtimeClassName", "serviceAccountName", "imagePullSecrets"):  # fmt: skip
        assert field not in pod


def test_the_serving_pods_take_every_pod_setting_the_user_sets() -> None:
    manifest = deployment(spec(serving={"replicas": 2, **POD_SETTINGS}))
    pod, container = pod_of(manifest)
    assert {k: v for k, v in pod.items() if k not in ("containers", "volumes", "terminationGracePeriodSeconds")} == {
        "nodeSelector": {"pool": "search"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "search", "effect": "NoSchedule"}],
        "affinity": POD_SETTINGS["affinity"],
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway",
                # filled in: this index's serving pods, every revision's
                "labelSelector": {"matchLabels": {"faiss.dev/index": "alerts", "faiss.dev/component": "serving"}},
            }
        ],
        "priorityClassName": "search-critical",
        "runtimeClassName": "gvisor",
        "serviceAccountName": "faiss-reader",
        "imagePullSecrets": [{"name": "registry-credentials"}],
        "securityContext": {**RESTRICTED_POD, "runAsUser": 1000, "fsGroup": 2000},
    }
    assert container["securityContext"] == {**RESTRICTED_CONTAINER, "readOnlyRootFilesystem": False}
    template = manifest["spec"]["template"]["metadata"]
    assert template["annotations"] == {"prometheus.io/scrape": "true"}
    assert template["labels"] == {"team": "search", **manifest["metadata"]["labels"]}


def test_the_build_and_cleanup_pods_take_the_build_settings_and_a_given_label_selector_is_kept() -> None:
    constraint = {**POD_SETTINGS["topologySpreadConstraints"][0], "labelSelector": {"matchLabels": {"team": "x"}}}
    wire = spec(build={"nodeSelector": {"pool": "batch"}, "topologySpreadConstraints": [constraint],
                       "podLabels": {"team": "search"}, "serviceAccountName": "faiss-builder",
                       "runtimeClassName": "runc"})  # fmt: skip
    pod, _ = pod_of(build_job(wire))
    assert pod["nodeSelector"] == {"pool": "batch"}
    assert pod["topologySpreadConstraints"] == [constraint]
    assert pod["serviceAccountName"] == "faiss-builder"
    assert pod["runtimeClassName"] == "runc"
    cleanup_pod, _ = pod_of(cleanup(api_resource.parse_spec(wire).build))
    assert (cleanup_pod["nodeSelector"], cleanup_pod["serviceAccountName"], cleanup_pod["runtimeClassName"]) == (
        {"pool": "batch"}, "faiss-builder", "runc"
    )
    assert build_job(wire)["spec"]["template"]["metadata"]["labels"]["team"] == "search"


@pytest.mark.parametrize(
    ("serving", "error"),
    [
        ({"podLabels": {"faiss.dev/revision": "x"}}, "podLabels may not set the operator's own labels"),
        ({"podLabels": {"app.kubernetes.io/instance": "x"}}, "podLabels may not set the operator's own labels"),
        ({"podDisruptionBudget": {"maxUnavailable": 1, "minAvailable": 1}}, "maxUnavailable or minAvailable, not both"),
        ({"podDisruptionBudget": {"minAvailable": "half"}}, "should match pattern"),
        ({"priorityClassName": "Not A Name"}, "should match pattern"),
        ({"runtimeClassName": "gVisor"}, "should match pattern"),
        ({"topologySpreadConstraints": [{"maxSkew": 1}]}, "Field required"),
        ({"securityContext": {"capabilities": {"drop": ["ALL"]}, "runAsRoot": True}}, r"runAsRoot: unknown field \(did you mean runAsNonRoot\?\)"),
    ],
)
def test_a_bad_pod_setting_is_refused_with_the_field_named(serving: dict[str, Any], error: str) -> None:
    with pytest.raises((api_resource.SpecError, pydantic.ValidationError), match=error):
        parsed(serving={"replicas": 2, **serving})


@pytest.mark.parametrize(
    ("budget", "expected"),
    [
        (None, {"maxUnavailable": 1}),
        ({"maxUnavailable": "25%"}, {"maxUnavailable": "25%"}),
        ({"minAvailable": 2}, {"minAvailable": 2}),
        ({"enabled": False}, None),
    ],
)
def test_the_disruption_budget_is_as_configured(budget: dict[str, Any] | None, expected: dict[str, Any] | None) -> None:
    serving = {"replicas": 2} if budget is None else {"replicas": 2, "podDisruptionBudget": budget}
    made = manifests.disruption_budget(RESOURCE, parsed(serving=serving))
    if expected is None:
        assert made is None
        return
    assert made is not None
    assert made["spec"] == {**expected, "selector": {"matchLabels": manifests.serving_selector("alerts")}}


MIB = 1024 * 1024
# 100 MiB index, one million vectors
MEASURED = serving_memory.Measured(index_bytes=100 * MIB, vectors=1_000_000)


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        # one process: index + 65 MiB + 1M x 40 B (38.1 MiB) -> 204 MiB
        (None, {"requests": {"memory": "204Mi"}}),
        # 2 CPUs -> 2 processes: 100 + 65 + 20 + 6 + 2 x 38.1 -> 268 MiB
        ({"limits": {"cpu": "2"}}, {"limits": {"cpu": "2"}, "requests": {"memory": "268Mi"}}),
        ({"requests": {"cpu": "500m"}}, {"requests": {"cpu": "500m", "memory": "204Mi"}}),
        ({"requests": {"memory": "1Gi"}}, {"requests": {"memory": "1Gi"}}),
        ({"limits": {"memory": "512Mi"}}, {"limits": {"memory": "512Mi"}}),
    ],
)
def test_serving_pods_request_the_memory_the_build_measured_unless_resources_set_memory(
    resources: dict[str, Any] | None, expected: dict[str, Any]
) -> None:
    serving: dict[str, Any] = {"replicas": 2} if resources is None else {"replicas": 2, "resources": resources}
    _, container = pod_of(deployment(spec(serving=serving), MEASURED))
    assert container["resources"] == expected


def test_without_a_measurement_the_serving_pods_request_nothing_of_their_own() -> None:
    _, container = pod_of(deployment(spec(), None))
    assert container["resources"] == {}
