"""`faiss-operator run` itself on the real API server: what it writes, what Kopf does not write,
what it says when the artifacts claim is missing, its logs, metrics and health endpoint.

(The user stories of issue 9 are in test_stories_*.py; these are properties of the operator
process they rely on.)
"""

from __future__ import annotations

import dataclasses
import re
import socket
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from e2e.harness import operator as operator_mod
from e2e.harness.waiting import wait_for
from e2e.stories import data, environment, faissindex

pytestmark = pytest.mark.integration

Obj = dict[str, Any]
NAME = "claims"
CLAIM_MESSAGE = (
    "PersistentVolumeClaim faiss-artifacts (spec.artifacts.uri) not found in namespace {namespace}: create it; "
    "the build Job and the serving pods mount it (ReadWriteMany on a multi-node cluster)"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclasses.dataclass(frozen=True)
class Run:
    api: client.ApiClient
    namespace: str
    operator: operator_mod.OperatorProcess
    metrics_port: int
    liveness_port: int

    def index(self) -> Obj:
        found: Obj = client.CustomObjectsApi(self.api).get_namespaced_custom_object(
            faissindex.GROUP, faissindex.VERSION, self.namespace, faissindex.PLURAL, NAME)
        return found

    def get(self, port: int, path: str) -> tuple[int, str]:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
            return int(answer.status), answer.read().decode()


@pytest.fixture(scope="module")
def run(api: client.ApiClient, crd: None, start_operator: Any) -> Iterator[Run]:
    """A namespace with the source claim filled but no artifacts claim, an operator watching it
    with metrics and liveness on free ports, and one FaissIndex created."""
    core = client.CoreV1Api(api)
    namespace = f"run-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    try:
        wait_for(lambda: core.read_namespaced_service_account("default", namespace), 30, "default service account")
        data.write_vectors(api, namespace, environment.SOURCE_CLAIM, environment.SOURCE_PATH)
        metrics_port, liveness_port = free_port(), free_port()
        operator = start_operator(
            namespaces=[namespace], args=["--metrics-port", str(metrics_port), "--liveness", str(liveness_port)]
        )
        spec = {"dimension": data.DIMENSION, "indexType": "Flat", "source": {"uri": environment.SOURCE_URI},
                "evaluation": {"k": 10, "queries": 100, "minRecall": 0.5}, "serving": {"replicas": 1}}  # fmt: skip
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            faissindex.GROUP, faissindex.VERSION, namespace, faissindex.PLURAL, faissindex.body(NAME, spec))
        yield Run(api, namespace, operator, metrics_port, liveness_port)
    finally:
        core.delete_namespace(namespace)


def test_a_missing_artifacts_claim_is_said_in_stalled_and_degraded(run: Run) -> None:
    def stalled() -> Obj | None:
        condition = faissindex.condition(run.index(), "Stalled")
        return condition if condition and condition["reason"] == "ClaimNotFound" else None

    condition = wait_for(stalled, 60, "Stalled ClaimNotFound")
    message = CLAIM_MESSAGE.format(namespace=run.namespace)
    assert (condition["status"], condition["message"]) == ("True", message)
    degraded = faissindex.condition(run.index(), "Degraded")
    assert degraded is not None and (degraded["status"], degraded["reason"], degraded["message"]) == (
        "True", "ClaimNotFound", message)  # fmt: skip


def test_once_the_claim_exists_the_index_becomes_ready_and_the_condition_clears(run: Run) -> None:
    client.CoreV1Api(run.api).create_namespaced_persistent_volume_claim(
        run.namespace, data.claim(environment.ARTIFACTS_CLAIM))

    def ready() -> Obj | None:
        obj = run.index()
        condition = faissindex.condition(obj, "Ready")
        return obj if condition and condition["status"] == "True" else None

    obj = wait_for(ready, 180, "Ready after the claim was created")
    stalled = faissindex.condition(obj, "Stalled")
    assert stalled is not None and (stalled["status"], stalled["reason"]) == ("False", "AsExpected")


def test_kopf_keeps_no_state_on_the_faissindex(run: Run) -> None:
    obj = run.index()
    metadata = obj["metadata"]
    assert metadata["finalizers"] == [faissindex.FINALIZER]
    assert [key for key in metadata.get("annotations") or {} if "kopf" in key] == []
    assert "kopf" not in obj["status"]
    writers = {entry["manager"] for entry in metadata["managedFields"]}
    assert "faiss-operator" in writers and not any("kopf" in writer for writer in writers)


def test_each_write_is_logged_once_in_past_tense_with_kind_name_and_revision(run: Run) -> None:
    revision = run.index()["status"]["currentRevision"]
    log = run.operator.current_run_text()
    job, deployment = f"{NAME}-build-{revision}", f"{NAME}-{revision}"
    index = f"index={run.namespace}/{NAME}"
    for line in (f"Created Job {job} revision={revision} {index}",
                 f"Created Deployment {deployment} revision={revision} {index}",
                 f"Created Service {NAME} revision=- {index}",
                 f"Added finalizer faiss.dev/cleanup to FaissIndex {NAME} {index}"):  # fmt: skip
        assert log.count(line) == 1, line
    assert re.search(rf"Updated status of FaissIndex {NAME} phase=Ready {index}", log)


def test_metrics_and_liveness_are_served(run: Run) -> None:
    status, _ = run.get(run.liveness_port, "/healthz")
    assert status == 200
    status, text = run.get(run.metrics_port, "/metrics")
    assert status == 200
    revision = run.index()["status"]["currentRevision"]
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    index = (("name", NAME), ("namespace", run.namespace))
    assert samples[("faiss_index_phase", tuple(sorted((*index, ("phase", "Ready")))))] == 1.0
    assert samples[("faiss_index_phase", tuple(sorted((*index, ("phase", "Building")))))] == 0.0
    assert samples[("faiss_index_ready_replicas", tuple(sorted((*index, ("revision", revision)))))] == 1.0
    assert samples[("faiss_operator_builds_total", (("result", "Succeeded"),))] == 1.0
    assert samples[("faiss_operator_reconcile_duration_seconds_count", ())] >= 1
