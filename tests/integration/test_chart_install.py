"""The chart installed by the helm the project builds into a real API server.

It proves what offline schemas cannot: the API server accepts every object the chart renders
(RBAC, the Deployment's security context, the CRD), and the ServiceAccount gets exactly the
permissions the operator needs, cluster-wide or, with watchNamespaces, only in the namespaces
watched (asked with `kubectl auth can-i --as`). The operator pod is kept unscheduled here (a
nodeSelector no node has): running the operator as the chart's pod is the e2e story, and a second
operator must not reconcile the objects of the other tests in this cluster.
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
        ("create", "events"),
        ("watch", "customresourcedefinitions.apiextensions.k8s.io"),
    }
    refused = {
        ("delete", "faissindexes.faiss.dev"),
        ("create", "faissindexes.faiss.dev"),
        ("get", "secrets"),
        ("delete", "pods"),
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
