"""The chart installed by the helm the project builds into a real API server.

It proves what offline schemas cannot: the API server accepts every object the chart renders
(RBAC, the Deployment's security context, the CRD), and the ServiceAccount gets exactly the
permissions the operator needs, cluster-wide or, with watchNamespaces, only in the namespaces
watched (asked with `kubectl auth can-i --as`). In the RBAC tests the operator pod is kept
unscheduled (a nodeSelector no node has): a cluster-wide operator must not reconcile the objects of
the other tests in this cluster. The last test is the e2e story: the chart installed with
watchNamespaces, the operator running as the chart's pod (from the image this run built, under runc), and the
first index built, evaluated and served through it, in a namespace that enforces Pod Security
`restricted` (e2e/stories/environment.py): the API server admits the chart's operator pod, the
build Job's pod and the serving pod only if each meets that profile.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from e2e.harness import cluster as cluster_mod
from e2e.harness import paths
from e2e.harness.kubectl import Kubectl
from e2e.harness.kubelet import images
from e2e.stories import chart, data, environment
from e2e.stories.faissindex import Index, body

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "faiss-operator"


def _run(*command: str, kubeconfig: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, timeout=180, env={"KUBECONFIG": str(kubeconfig), "HOME": "/tmp"}
    )


@pytest.fixture
def release(cluster: cluster_mod.Cluster, namespace: str) -> Iterator[tuple[str, str]]:
    """A release name unique to the test, installed in `namespace`; uninstalled afterwards."""
    name = f"chart-{uuid.uuid4().hex[:6]}"
    yield name, namespace
    _run(str(paths.bin_dir() / "helm"), "uninstall", name, "-n", namespace, kubeconfig=cluster.kubeconfig)


def _install(cluster: cluster_mod.Cluster, name: str, namespace: str, *sets: str) -> None:
    helm = paths.bin_dir() / "helm"
    if not helm.exists():
        pytest.fail("helm is missing: hack/build-k8s.sh builds it with the control plane")
    command = [str(helm), "install", name, str(CHART), "-n", namespace]
    command += ["--set-string", "nodeSelector.no-such-node=true"]
    for value in sets:
        command += ["--set", value]
    run = _run(*command, kubeconfig=cluster.kubeconfig)
    assert run.returncode == 0, run.stderr


def _can(cluster: cluster_mod.Cluster, account: str, verb: str, resource: str, namespace: str | None) -> bool:
    command = [str(paths.bin_dir() / "kubectl"), "auth", "can-i", verb, resource, f"--as={account}"]
    command += ["-n", namespace] if namespace else ["--all-namespaces"]
    run = _run(*command, kubeconfig=cluster.kubeconfig)
    assert run.stdout.strip() in ("yes", "no"), run.stdout + run.stderr
    return run.stdout.strip() == "yes"


def test_a_cluster_wide_install_is_accepted_and_grants_what_the_operator_uses(
    cluster: cluster_mod.Cluster, api: client.ApiClient, release: tuple[str, str]
) -> None:
    name, namespace = release
    _install(cluster, name, namespace)
    fullname = f"{name}-faiss-operator"
    deployment = client.AppsV1Api(api).read_namespaced_deployment(fullname, namespace)
    assert deployment.spec.strategy.type == "Recreate"
    container = deployment.spec.template.spec.containers[0]
    assert container.security_context.read_only_root_filesystem is True
    assert container.security_context.capabilities.drop == ["ALL"]
    crd = client.ApiextensionsV1Api(api).read_custom_resource_definition("faissindexes.faiss.dev")
    assert {c.type: c.status for c in crd.status.conditions}["Established"] == "True"
    account = f"system:serviceaccount:{namespace}:{fullname}"
    allowed = {
        ("patch", "faissindexes.faiss.dev/status"),
        ("watch", "faissindexes.faiss.dev"),
        ("patch", "deployments.apps"),
        ("delete", "jobs.batch"),
        ("list", "pods"),
        ("delete", "pods"),  # finished build pods, once their report is recorded (they would pin a claim)
        ("create", "events"),
        ("watch", "customresourcedefinitions.apiextensions.k8s.io"),
        ("get", "secrets"),  # by name: the keys spec.objectStore names, for the HEAD of an s3:// source
    }
    refused = {
        ("delete", "faissindexes.faiss.dev"),
        ("create", "faissindexes.faiss.dev"),
        ("list", "secrets"),
        ("watch", "secrets"),
        ("create", "pods"),
        ("create", "customresourcedefinitions.apiextensions.k8s.io"),
    }
    assert {(v, r) for v, r in allowed | refused if _can(cluster, account, v, r, None)} == allowed


def test_watch_namespaces_grant_only_inside_them(
    cluster: cluster_mod.Cluster, api: client.ApiClient, release: tuple[str, str], namespace: str
) -> None:
    name, home = release
    core = client.CoreV1Api(api)
    watched, other = f"w-{uuid.uuid4().hex[:6]}", f"o-{uuid.uuid4().hex[:6]}"
    for each in (watched, other):
        core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": each}})
    try:
        _install(cluster, name, home, f"watchNamespaces={{{watched}}}")
        account = f"system:serviceaccount:{home}:{name}-faiss-operator"
        assert _can(cluster, account, "patch", "faissindexes.faiss.dev/status", watched)
        assert _can(cluster, account, "patch", "deployments.apps", watched)
        assert not _can(cluster, account, "patch", "faissindexes.faiss.dev/status", other)
        assert not _can(cluster, account, "list", "pods", None)
        assert _can(cluster, account, "watch", "customresourcedefinitions.apiextensions.k8s.io", None)
    finally:
        for each in (watched, other):
            core.delete_namespace(each)


FIRST_INDEX = {"dimension": data.DIMENSION, "indexType": "HNSW",
               "config": {"m": 16, "efConstruction": 40, "efSearch": 32},
               "source": {"uri": environment.SOURCE_URI},
               "evaluation": {"k": 10, "queries": 100, "minRecall": 0.5}, "serving": {"replicas": 1}}
FIRST_INDEX_SECONDS = 240  # a build Job and a serving pod, each a Python process importing FAISS


def test_the_operator_as_the_charts_pod_makes_the_first_index_ready(
        api: client.ApiClient, crd: None, cluster: cluster_mod.Cluster, kubectl: Kubectl) -> None:
    story = environment.create(api, "chart")
    release = chart.Release(f"op-{uuid.uuid4().hex[:6]}", story.name, cluster.kubeconfig)
    try:
        chart.install(release, chart.local_values(watch_namespaces=[story.name]))
        pod = release.operator_pod(api)
        assert pod is not None, "helm --wait returned but the chart's operator pod is gone"
        assert pod.spec.service_account_name == release.fullname
        assert pod.spec.containers[0].args[0] == "run"
        # The operator runs from the image `make image` built for this run, under runc.
        built = f"sha256:{images.Store().get(chart.LOCAL_IMAGE['repository'] + ':' + chart.LOCAL_IMAGE['tag']).id}"
        assert [(s.container_id.split("://")[0], s.image_id) for s in pod.status.container_statuses] == [("runc", built)]

        def operator_alive() -> None:
            now = release.operator_pod(api)
            restarts = sum(c.restart_count for c in (now.status.container_statuses or [])) if now else 0
            if now is None or restarts:
                log = cluster.container_log(release.namespace, pod.metadata.name, "operator")
                raise AssertionError(f"the chart's operator pod restarted or went; its log:\n{log[-4000:]}")

        kubectl.apply({**body("first", FIRST_INDEX), "metadata": {"name": "first", "namespace": story.name}})
        index = Index(api, story.name, "first")
        obj = index.wait_ready(FIRST_INDEX_SECONDS, alive=operator_alive)
        status = obj["status"]
        assert 0.5 < status["recall"] <= 1.0 and status["p99LatencyMs"] > 0
        assert index.build_jobs() == [f"first-build-{status['currentRevision']}"]
        assert [r["state"] for r in status["revisions"]] == ["Active"]
        assert list(index.ready_pods()) == [status["currentRevision"]]
        # So does the serving pod the operator made (the build Job's pod may be gone: the operator
        # deletes finished build pods).
        serving = [s for pods in index.ready_pods().values() for p in pods for s in p.status.container_statuses]
        assert [(s.container_id.split("://")[0], s.image_id) for s in serving] == [("runc", built)]
        printed = kubectl.run("get", "faissindex", "first", "-n", story.name).stdout
        assert f"{status['recall']}" in printed and "Ready" in printed, printed
    finally:
        chart.uninstall(release)
        environment.delete(api, story.name)
