"""The operator's own objects on a real API server and the process kubelet, without Kopf.

The test applies what the controller would: the generated CRD, FaissIndex resources, and the
child manifests from `controller.manifests` for one revision. It proves the schema, its CEL
rules and defaults hold on the real API server, that the build Job runs `faiss-operator build`
and reports through its termination message, and that the serving Deployment and Service carry
searches to the built index.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import pathlib
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import yaml
from faiss_operator.api import resource as api_resource
from faiss_operator.api import status as api_status
from faiss_operator.contract import build_report
from faiss_operator.controller.decision import manifests, observed, revisions, storage
from faiss_operator.controller.runtime import child_views
from faiss_operator.index import config as index_config
from faiss_operator.controller.decision import settings as operator_settings
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from e2e.harness.waiting import wait_for
from e2e.stories import data as story_data
from tests.api import samples

pytestmark = pytest.mark.integration

SETTINGS = operator_settings.OperatorSettings(image="faiss-operator:dev")
VECTORS, DIMENSION, SEED = 2000, 16, 7
SOURCE_CLAIM, ARTIFACTS_CLAIM = "embeddings", "faiss-artifacts"
SPEC: dict[str, Any] = {
    "dimension": DIMENSION,
    "indexType": "HNSW",
    "config": {"m": 16, "efConstruction": 40, "efSearch": 32},
    "source": {"uri": f"pvc://{SOURCE_CLAIM}/vectors/v1.npy"},
    "evaluation": {"k": 10, "queries": 100, "minRecall": 0.5},
    "serving": {"replicas": 1},
}
WRITE_VECTORS = (
    "import os, sys, numpy as np; os.makedirs(os.path.dirname(sys.argv[1]), exist_ok=True); "
    f"np.save(sys.argv[1], np.random.default_rng({SEED}).standard_normal(({VECTORS}, {DIMENSION}), dtype=np.float32))"
)


def vectors() -> np.ndarray[Any, np.dtype[np.float32]]:
    """The same vectors the writer Job puts into the source claim."""
    return np.random.default_rng(SEED).standard_normal((VECTORS, DIMENSION), dtype=np.float32)


def custom(api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


def faiss_index(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": api_resource.API_VERSION, "kind": api_resource.KIND,
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def create_index(api: client.ApiClient, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    body = {**body, "metadata": {**body["metadata"], "namespace": namespace}}
    created: dict[str, Any] = custom(api).create_namespaced_custom_object(
        api_resource.GROUP, api_resource.VERSION, namespace, api_resource.PLURAL, body)
    return created


def condition_true(obj: Any, type_: str) -> bool:
    return any(c.type == type_ and c.status == "True" for c in (obj.status.conditions or []))


def as_wire(api: client.ApiClient, obj: Any) -> dict[str, Any]:
    """A client model as the camelCase mapping the controller (through Kopf) sees."""
    wire: dict[str, Any] = api.sanitize_for_serialization(obj)
    return wire


def wait_complete(batch: client.BatchV1Api, namespace: str, name: str, timeout: float) -> client.V1Job:
    def done() -> client.V1Job | None:
        job = batch.read_namespaced_job(name, namespace)
        if condition_true(job, "Failed"):
            raise AssertionError(f"job {name} failed: {job.status.conditions}")
        return job if condition_true(job, "Complete") else None
    result: client.V1Job = wait_for(done, timeout, f"job {name} Complete")
    return result


def new_namespace(core: client.CoreV1Api) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    wait_for(lambda: core.read_namespaced_service_account("default", name), 30, f"service account default in {name}")
    return name


def claim(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}


# --- the CRD (fixture `crd` in conftest.py) ---


def test_a_valid_faissindex_is_stored_with_the_schema_defaults_filled_in(
        api: client.ApiClient, crd: None, namespace: str) -> None:
    smallest = copy.deepcopy(samples.GOOD["the smallest spec"])
    stored = create_index(api, namespace, smallest)
    spec = stored["spec"]
    assert spec["metric"] == "L2" and spec["normalize"] is False
    assert spec["artifacts"] == {"uri": "pvc://faiss-artifacts"}
    assert spec["evaluation"] == {"k": 10, "queries": 1000}
    assert spec["serving"] == {"replicas": 2, "port": 8080, "podDisruptionBudget": {"enabled": True}}
    assert spec["build"]["activeDeadlineSeconds"] == 3600 and spec["build"]["backoffLimit"] == 1
    assert spec["rollout"]["autoRollback"] is True and spec["rollout"]["revisionHistoryLimit"] == 3
    # The server's defaults and the models' defaults agree: the stored spec means the same thing.
    assert api_resource.parse_spec(spec) == api_resource.parse_spec(smallest["spec"])

    read = custom(api).get_namespaced_custom_object(
        api_resource.GROUP, api_resource.VERSION, namespace, api_resource.PLURAL, "tiny")
    assert read["spec"] == spec and read["metadata"]["generation"] == 1


# The CRD's CEL messages, as the API server gives them (the models word the same checks their own way).
CEL_REFUSALS = {
    "an HNSW config with nprobe": "config has a key that is not a parameter of indexType HNSW; "
                                  "valid keys for HNSW: efConstruction, efSearch, m",
    "decreasing step weights": "rollout.steps: weights must be strictly increasing (e.g. 10, 25, 50)",
    # Issue 19: `validate` refuses an absolute claim path because the API server does.
    "source with an absolute path in its claim": "a pvc:// path may neither contain a '..' segment nor start "
                                                 "with '/' (it must stay inside its claim)",
}


def test_a_python_field_name_is_an_unknown_field_to_kubectl_s_strict_validation(
        api: client.ApiClient, crd: None, namespace: str) -> None:
    # Issue 19: `validate` says "unknown field (did you mean minRecall?)" because the API server,
    # with kubectl's default strict field validation, refuses the name too.
    body = copy.deepcopy(samples.DESIGN_EXAMPLE)
    body["metadata"] = {"name": "snake", "namespace": namespace}
    body["spec"]["evaluation"] = {"min_recall": 0.95}
    with pytest.raises(ApiException) as refused:
        custom(api).create_namespaced_custom_object(
            api_resource.GROUP, api_resource.VERSION, namespace, api_resource.PLURAL, body, field_validation="Strict")
    assert refused.value.status == 400  # BadRequest, as kubectl reports it
    assert 'unknown field "spec.evaluation.min_recall"' in json.loads(refused.value.body)["message"]


@pytest.mark.parametrize("case", sorted(CEL_REFUSALS))
def test_an_invalid_faissindex_is_refused_with_the_cel_message(
        api: client.ApiClient, crd: None, namespace: str, case: str) -> None:
    bad = samples.BAD[case]
    assert bad.refused_by == "cel"
    with pytest.raises(ApiException) as refused:
        create_index(api, namespace, bad.body)
    assert refused.value.status == 422
    body = json.loads(refused.value.body)
    assert body["reason"] == "Invalid"
    messages = [str(cause.get("message")) for cause in body["details"]["causes"]]
    assert any(CEL_REFUSALS[case] in m for m in messages), messages
    with pytest.raises(ApiException) as absent:
        custom(api).get_namespaced_custom_object(api_resource.GROUP, api_resource.VERSION, namespace,
                                                 api_resource.PLURAL, bad.body["metadata"]["name"])
    assert absent.value.status == 404


def test_the_status_subresource_takes_a_status_patch_and_the_spec_does_not(
        api: client.ApiClient, crd: None, namespace: str) -> None:
    objects = custom(api)
    create_index(api, namespace, samples.DESIGN_EXAMPLE)
    status = api_status.FaissIndexStatus.model_validate(
        {"observedGeneration": 1, "phase": "Building", "candidateRevision": "5d41c2aa00"}).to_wire()
    patched = objects.patch_namespaced_custom_object_status(
        api_resource.GROUP, api_resource.VERSION, namespace, api_resource.PLURAL, "alerts", {"status": status})
    assert patched["status"]["phase"] == "Building"
    assert api_resource.parse_status(patched["status"]) == api_status.FaissIndexStatus.model_validate(status)
    assert patched["metadata"]["generation"] == 1  # a status write is no spec change

    # Through the main resource, status is ignored.
    objects.patch_namespaced_custom_object(api_resource.GROUP, api_resource.VERSION, namespace, api_resource.PLURAL,
                                           "alerts", {"status": {"phase": "Failed"}})
    read = objects.get_namespaced_custom_object(
        api_resource.GROUP, api_resource.VERSION, namespace, api_resource.PLURAL, "alerts")
    assert read["status"]["phase"] == "Building"


def test_a_status_the_previous_operator_wrote_reads_typed_and_is_written_back_whole(
        api: client.ApiClient, crd: None, namespace: str) -> None:
    # The previous operator version stored each revision's config as an untyped camelCase dict;
    # one of them no longer reads (a hand edit), and must survive a write-back unchanged.
    objects = custom(api)
    create_index(api, namespace, samples.DESIGN_EXAMPLE)
    entry = {"artifact": "pvc://faiss-artifacts/search/alerts/k", "artifactKey": "k", "state": "Active",
             "createdAt": "2026-01-02T03:04:05Z", "buildAttempt": 0}
    old = {
        "observedGeneration": 1, "phase": "Ready", "currentRevision": "a1",
        "revisions": [
            {**entry, "name": "a1", "indexType": "HNSW", "config": {"m": 32, "efConstruction": 200, "efSearch": 64}},
            {**entry, "name": "a0", "indexType": "IVF", "config": {"nlist": 4, "nprobe": 4, "efSerch": 1},
             "state": "Retired"},
        ],
    }
    patched = objects.patch_namespaced_custom_object_status(
        api_resource.GROUP, api_resource.VERSION, namespace, api_resource.PLURAL, "alerts", {"status": old})
    status = api_resource.parse_status(patched["status"])
    assert [e.typed_config() for e in status.revisions] == [index_config.HNSWConfig(), None]
    assert status.revisions[1].config == {"nlist": 4, "nprobe": 4, "efSerch": 1}
    rewritten = objects.patch_namespaced_custom_object_status(
        api_resource.GROUP, api_resource.VERSION, namespace, api_resource.PLURAL, "alerts", {"status": status.to_wire()})
    assert [e["config"] for e in rewritten["status"]["revisions"]] == [e["config"] for e in old["revisions"]]
    assert api_resource.parse_status(rewritten["status"]) == status


# --- one revision: build Job, serving Deployment, Service ---


@dataclasses.dataclass(frozen=True)
class Built:
    namespace: str
    resource: api_resource.Resource
    desired: revisions.DesiredRevision
    artifact: str
    pod: dict[str, Any]
    outcome: observed.JobOutcome


@pytest.fixture(scope="module")
def built(api: client.ApiClient, crd: None) -> Iterator[Built]:
    """A real FaissIndex (owner of the children), vectors in a claim, and its build Job run to the end."""
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    namespace = new_namespace(core)
    try:
        stored = create_index(api, namespace, faiss_index("vectors", namespace, SPEC))
        resource = api_resource.Resource.from_body(stored)
        spec = api_resource.parse_spec(resource.spec)
        desired = revisions.desired_revision(spec, SETTINGS, index_name=resource.name)
        artifact = storage.artifact_uri(spec.artifacts.uri, resource.name, desired.artifact_key)

        for name in (SOURCE_CLAIM, ARTIFACTS_CLAIM):
            core.create_namespaced_persistent_volume_claim(namespace, claim(name))
        source = storage.parse_pvc(spec.source.uri)
        batch.create_namespaced_job(namespace, {
            "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "write-vectors"},
            "spec": {"backoffLimit": 0, "template": {"spec": {
                "restartPolicy": "Never",
                # The project's image (numpy), as its user: fsGroup makes the claim writable to it.
                "securityContext": story_data.RESTRICTED_POD,
                "volumes": [{"name": "src", "persistentVolumeClaim": {"claimName": SOURCE_CLAIM}}],
                "containers": [{"name": "write", "image": story_data.WRITER_IMAGE,
                                "command": ["python", "-c", WRITE_VECTORS, source.container_path],
                                "securityContext": story_data.RESTRICTED_CONTAINER,
                                "volumeMounts": [{"name": "src", "mountPath": source.mount_path}]}],
            }}},
        })
        wait_complete(batch, namespace, "write-vectors", 60)

        job = manifests.build_job(resource, spec, revision=desired.name, attempt=0, artifact=artifact,
                                  index_type=desired.index_type, build_config=desired.build_config,
                                  image=desired.builder_image)
        batch.create_namespaced_job(namespace, job)
        name = job["metadata"]["name"]
        live = wait_complete(batch, namespace, name, 90)
        pods = core.list_namespaced_pod(namespace, label_selector=f"{manifests.LABEL_BUILD_JOB}={name}").items
        wire_pods = [as_wire(api, p) for p in pods]
        outcome = child_views.job_outcome(as_wire(api, live), wire_pods)
        (pod,) = wire_pods
        yield Built(namespace, resource, desired, artifact, pod, outcome)
    finally:
        core.delete_namespace(namespace)


def test_the_build_job_runs_faiss_operator_build_and_reports_through_its_termination_message(built: Built) -> None:
    assert built.pod["status"]["phase"] == "Succeeded"
    (status,) = built.pod["status"]["containerStatuses"]
    assert status["name"] == manifests.BUILD_CONTAINER and status["state"]["terminated"]["exitCode"] == 0
    assert isinstance(built.outcome, observed.JobSucceeded)
    parsed = build_report.parse_report(built.outcome.termination_message)
    assert parsed.vectors == VECTORS
    assert parsed.k == 10
    assert 0.8 <= parsed.recall <= 1.0
    assert parsed.p99_ms > 0
    assert parsed.artifact == storage.parse_pvc(built.artifact).container_path


def test_the_serving_deployment_answers_searches_and_the_service_gets_its_endpoint(
        api: client.ApiClient, built: Built) -> None:
    apps, core, policy = client.AppsV1Api(api), client.CoreV1Api(api), client.PolicyV1Api(api)
    discovery = client.DiscoveryV1Api(api)
    namespace, resource = built.namespace, built.resource
    spec = api_resource.parse_spec(resource.spec)
    deployment = manifests.deployment(resource, spec, revision=built.desired.name, artifact=built.artifact,
                                      search_params=built.desired.search_params, replicas=1,
                                      image=spec.serving.image or SETTINGS.image)
    service = manifests.service(resource, spec)
    apps.create_namespaced_deployment(namespace, deployment)
    core.create_namespaced_service(namespace, service)
    budget_manifest = manifests.disruption_budget(resource, spec)
    assert budget_manifest is not None  # on by default (serving.podDisruptionBudget.enabled)
    policy.create_namespaced_pod_disruption_budget(namespace, budget_manifest)

    name = deployment["metadata"]["name"]
    wait_for(lambda: (d := apps.read_namespaced_deployment(name, namespace)).status.ready_replicas == 1
             and condition_true(d, "Available"), 60, f"deployment {name} Available")
    selector = ",".join(f"{k}={v}" for k, v in deployment["spec"]["selector"]["matchLabels"].items())
    (pod,) = [p for p in core.list_namespaced_pod(namespace, label_selector=selector).items
              if p.metadata.deletion_timestamp is None]
    assert pod.status.container_statuses[0].ready

    data = vectors()
    request = urllib.request.Request(
        f"http://{pod.status.pod_ip}:{spec.serving.port}/v1/search",
        data=json.dumps({"vector": data[123].tolist(), "k": 5}).encode(),
        headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        result = json.loads(answer.read())
    assert len(result["ids"]) == 5 and len(result["distances"]) == 5
    assert result["ids"][0] == 123 and result["distances"][0] == pytest.approx(0.0, abs=1e-4)

    service_name = service["metadata"]["name"]

    def ready_addresses() -> set[str]:
        slices = discovery.list_namespaced_endpoint_slice(
            namespace, label_selector=f"kubernetes.io/service-name={service_name}")
        return {a for s in slices.items for e in s.endpoints or [] if e.conditions.ready for a in e.addresses}
    assert wait_for(ready_addresses, 30, f"a ready endpoint of Service {service_name}") == {pod.status.pod_ip}
    budget = policy.read_namespaced_pod_disruption_budget(service_name, namespace)
    wait_for(lambda: policy.read_namespaced_pod_disruption_budget(service_name, namespace).status.current_healthy == 1,
             30, "the disruption budget to count the serving pod")
    assert budget.metadata.owner_references[0].uid == resource.uid



# A field in the wrong place: the schema is structural and preserves no unknown fields under
# spec, so the API server either refuses it (field validation Strict: kubectl's default) or drops
# it with a warning (the API's own default, Warn). A CEL rule cannot do better: pruning happens
# before validation, so no rule ever sees the field.
MISPLACED = "spec.idsUri"


def _misplaced(name: str) -> dict[str, Any]:
    body = copy.deepcopy(samples.GOOD["the smallest spec"])
    body["metadata"]["name"] = name
    body["spec"]["idsUri"] = "file:///data/ids.txt"  # belongs under spec.source
    return body


def test_ids_uri_under_spec_is_refused_under_strict_field_validation(
        api: client.ApiClient, crd: None, namespace: str) -> None:
    body = {**_misplaced("misplaced-strict"), "metadata": {"name": "misplaced-strict", "namespace": namespace}}
    with pytest.raises(ApiException) as refused:
        custom(api).create_namespaced_custom_object(api_resource.GROUP, api_resource.VERSION, namespace,
                                                    api_resource.PLURAL, body, field_validation="Strict")
    assert refused.value.status == 400
    assert f'unknown field \\"{MISPLACED}\\"' in refused.value.body


def test_kubectl_refuses_ids_uri_under_spec_by_default(
        cluster: Any, crd: None, namespace: str, tmp_path: pathlib.Path) -> None:
    from e2e.harness import paths

    manifest = tmp_path / "misplaced.yaml"
    manifest.write_text(yaml.safe_dump(_misplaced("misplaced-kubectl")))
    run = subprocess.run([str(paths.bin_dir() / "kubectl"), "--kubeconfig", str(cluster.kubeconfig), "-n", namespace,
                          "create", "-f", str(manifest)], capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert f'unknown field "{MISPLACED}"' in run.stderr


def test_without_strict_validation_the_field_is_dropped_with_a_warning(
        api: client.ApiClient, crd: None, namespace: str) -> None:
    body = {**_misplaced("misplaced-warn"), "metadata": {"name": "misplaced-warn", "namespace": namespace}}
    created, status, headers = custom(api).create_namespaced_custom_object_with_http_info(
        api_resource.GROUP, api_resource.VERSION, namespace, api_resource.PLURAL, body)
    assert status == 201
    assert "idsUri" not in created["spec"] and "idsUri" not in created["spec"]["source"]
    assert headers.get("Warning") == f'299 - "unknown field \\"{MISPLACED}\\""'
