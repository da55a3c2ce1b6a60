"""Issue 17, section 3, on the real control plane: what the operator puts in its pods.

The story namespace enforces Pod Security `restricted` (e2e/stories/environment.py), so the API
server's PodSecurity admission refuses any pod of the build Job or the serving Deployment that
does not meet it: the index becoming Ready proves the defaults pass. Then serving-only pod
settings (node selector, tolerations, annotations and labels, a security context override, the
PodDisruptionBudget, the RuntimeClass: `runc` runs the pods from the image, as uid 1000 here) change
the running Deployment in place: same revision, no build Job.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from e2e.harness.kubectl import Kubectl
from e2e.harness.operator import OperatorProcess
from e2e.harness.waiting import wait_for
from e2e.stories import environment
from e2e.stories.faissindex import Index, Obj, body

pytestmark = pytest.mark.integration

NAME = "pods"
HNSW = {"indexType": "HNSW", "config": {"m": 16, "efConstruction": 40, "efSearch": 32}}
READY_SECONDS = 240
ROLLOUT = {"scaleDownDelaySeconds": 5, "progressDeadlineSeconds": 150}
RESTRICTED_POD = {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532,
                  "seccompProfile": {"type": "RuntimeDefault"}}  # fmt: skip
RESTRICTED_CONTAINER = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]}}  # fmt: skip
SERVING_SETTINGS: dict[str, Any] = {
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "search", "effect": "NoSchedule"}],
    "podAnnotations": {"example.com/owner": "search-team"},
    "podLabels": {"team": "search"},
    "podSecurityContext": {"runAsUser": 1000, "runAsGroup": 1000},
    "runtimeClassName": "runc",
    "podDisruptionBudget": {"minAvailable": 1},
}


def spec(serving: dict[str, Any] | None = None) -> Obj:
    return environment.index_spec(HNSW, rollout=ROLLOUT, serving={"replicas": 1, **(serving or {})})


@pytest.fixture(scope="module")
def story(api: client.ApiClient, crd: None, start_operator: Any) -> Iterator[tuple[str, OperatorProcess]]:
    story_ns = environment.create(api, "pods")
    operator = start_operator(namespaces=[story_ns.name])
    try:
        yield story_ns.name, operator
    finally:
        environment.delete(api, story_ns.name)


def without_nulls(value: Any) -> Any:
    """An object of the kubernetes client as the API server's JSON (camelCase), nulls left out."""
    return client.ApiClient().sanitize_for_serialization(value)


def test_the_namespace_refuses_a_pod_that_is_not_restricted(
    api: client.ApiClient, story: tuple[str, OperatorProcess]
) -> None:
    """The check the whole story leans on: the API server does enforce `restricted` here."""
    namespace, _ = story
    bare = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bare"},
            "spec": {"containers": [{"name": "c", "image": "python", "command": ["true"]}]}}  # fmt: skip
    with pytest.raises(ApiException) as refused:
        client.CoreV1Api(api).create_namespaced_pod(namespace, bare)
    assert refused.value.status == 403
    assert json.loads(refused.value.body)["message"] == (
        'pods "bare" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false '
        '(container "c" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities '
        '(container "c" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or container '
        '"c" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container "c" must set '
        'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")'
    )


def test_restricted_pods_serve_and_serving_pod_settings_change_the_deployment_in_place(
    api: client.ApiClient, kubectl: Kubectl, story: tuple[str, OperatorProcess]
) -> None:
    namespace, operator = story
    index = Index(api, namespace, NAME)
    kubectl.apply(body(NAME, spec(), namespace=namespace))
    obj = index.wait_ready(READY_SECONDS, alive=operator.check_running)
    revision = obj["status"]["currentRevision"]
    (job,) = index.jobs("build")
    build_pod = without_nulls(job.spec.template.spec)
    assert build_pod["securityContext"] == RESTRICTED_POD
    assert build_pod["containers"][0]["securityContext"] == RESTRICTED_CONTAINER
    deployment = index.deployments()[revision]
    template = without_nulls(deployment.spec.template)
    assert template["spec"]["securityContext"] == RESTRICTED_POD
    assert template["spec"]["containers"][0]["securityContext"] == RESTRICTED_CONTAINER
    assert {"name": "TMPDIR", "value": "/tmp"} in template["spec"]["containers"][0]["env"]
    policy = client.PolicyV1Api(api)
    budget = policy.read_namespaced_pod_disruption_budget(NAME, namespace)
    assert (budget.spec.max_unavailable, budget.spec.min_available) == (1, None)
    generation = deployment.metadata.generation

    kubectl.apply(body(NAME, spec(SERVING_SETTINGS), namespace=namespace))

    def patched() -> client.V1Deployment | None:
        live = index.deployments().get(revision)
        return live if live is not None and live.spec.template.spec.node_selector else None

    live = wait_for(patched, 60, f"Deployment of {revision} patched with the serving pod settings")
    template = without_nulls(live.spec.template)
    assert live.metadata.name == deployment.metadata.name and live.metadata.generation > generation
    assert template["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert template["spec"]["tolerations"] == SERVING_SETTINGS["tolerations"]
    assert template["spec"]["runtimeClassName"] == "runc"
    assert template["spec"]["securityContext"] == {**RESTRICTED_POD, "runAsUser": 1000, "runAsGroup": 1000}
    assert template["metadata"]["annotations"] == {"example.com/owner": "search-team"}
    assert template["metadata"]["labels"]["team"] == "search"
    wait_for(lambda: policy.read_namespaced_pod_disruption_budget(NAME, namespace).spec.min_available == 1,
             60, "the PodDisruptionBudget with minAvailable 1")  # fmt: skip
    assert policy.read_namespaced_pod_disruption_budget(NAME, namespace).spec.max_unavailable is None
    # The pods are replaced in place by the Deployment (still restricted: runAsUser 1000 is non-root)
    obj = index.wait(
        lambda o: o["status"].get("observedGeneration") == o["metadata"]["generation"]
        and any(p.metadata.labels.get("team") == "search" for p in index.ready_pods().get(revision, [])),
        READY_SECONDS, "a ready serving pod with the new settings", alive=operator.check_running,
    )  # fmt: skip
    assert obj["status"]["currentRevision"] == revision and not obj["status"].get("candidateRevision")
    assert [r["name"] for r in obj["status"]["revisions"]] == [revision]
    assert [j.metadata.name for j in index.jobs("build")] == [job.metadata.name]  # no new build

    kubectl.apply(body(NAME, spec({**SERVING_SETTINGS, "podDisruptionBudget": {"enabled": False}}), namespace=namespace))

    def budget_gone() -> bool:
        try:
            policy.read_namespaced_pod_disruption_budget(NAME, namespace)
        except ApiException as error:
            return error.status == 404
        return False

    wait_for(budget_gone, 60, "the PodDisruptionBudget deleted once disabled")
