"""Issue 9, section 3, story 11: the operator inside the cluster, as a pod with its ServiceAccount's
token and the least-privilege ClusterRole of deploy/rbac.yaml.

The first-index story passes with exactly that role; the same role with one verb removed (the
`patch` on Jobs that server-side apply of a build Job needs) leaves the index without a build Job
and the operator logging the API server's refusal.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
import yaml
from kubernetes import client

from e2e.harness import cluster as cluster_mod
from e2e.harness import paths
from e2e.harness.kubectl import Kubectl
from e2e.harness.waiting import wait_for
from e2e.stories import data, environment
from e2e.stories.faissindex import Index, Obj, body

pytestmark = pytest.mark.integration

RBAC_FILE = paths.REPO_ROOT / "deploy" / "rbac.yaml"
NAME = "inside"
BUILD_READY_SECONDS = 240
SPEC = {"dimension": data.DIMENSION, "indexType": "HNSW", "config": {"m": 16, "efConstruction": 40, "efSearch": 32},
        "source": {"uri": environment.SOURCE_URI}, "evaluation": {"k": 10, "queries": 100, "minRecall": 0.5},
        "serving": {"replicas": 1}}


def rbac_documents() -> list[Obj]:
    if not RBAC_FILE.exists():
        pytest.skip(f"{RBAC_FILE.relative_to(paths.REPO_ROOT)} is not in this tree yet")
    return [d for d in yaml.safe_load_all(RBAC_FILE.read_text()) if d]


def one(documents: list[Obj], kind: str) -> Obj:
    (found,) = [d for d in documents if d["kind"] == kind]
    return found


def operator_pod(name: str, namespace: str, service_account: str, watched: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": {"serviceAccountName": service_account, "restartPolicy": "Always",
                     "terminationGracePeriodSeconds": 5,
                     "containers": [{"name": "operator", "image": "faiss-operator:dev",
                                     "args": ["run", "--namespace", watched, "--analysis-interval", "1"],
                                     "env": [{"name": "FAISS_OPERATOR_IMAGE", "value": "faiss-operator:dev"}]}]}}


def renamed(documents: list[Obj], suffix: str, namespace: str) -> list[Obj]:
    """The ServiceAccount, ClusterRole and ClusterRoleBinding of rbac.yaml under new names, the
    ServiceAccount in `namespace` (so two operators with different roles can run side by side)."""
    out = []
    for doc in copy.deepcopy(documents):
        if doc["kind"] not in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding"):
            continue
        doc["metadata"]["name"] = f"{doc['metadata']['name']}-{suffix}"
        if doc["kind"] == "ServiceAccount":
            doc["metadata"]["namespace"] = namespace
        if doc["kind"] == "ClusterRoleBinding":
            doc["roleRef"]["name"] = f"{doc['roleRef']['name']}-{suffix}"
            for subject in doc["subjects"]:
                subject["name"] = f"{subject['name']}-{suffix}"
                subject["namespace"] = namespace
        out.append(doc)
    return out


def without_job_patch(documents: list[Obj]) -> tuple[list[Obj], str]:
    docs = copy.deepcopy(documents)
    role = one(docs, "ClusterRole")
    for rule in role["rules"]:
        if "jobs" in rule.get("resources", []) and "batch" in rule.get("apiGroups", []):
            verb = "patch" if "patch" in rule["verbs"] else "create"
            if len(rule["resources"]) > 1:  # take jobs out into a rule of its own, one verb short
                rule["resources"].remove("jobs")
                role["rules"].append({"apiGroups": ["batch"], "resources": ["jobs"],
                                      "verbs": [v for v in rule["verbs"] if v != verb]})
            else:
                rule["verbs"].remove(verb)
            return docs, verb
    raise AssertionError(f"{RBAC_FILE} has no rule for batch jobs: {role['rules']}")


@pytest.fixture(scope="module")
def system_namespace(api: client.ApiClient) -> Iterator[str]:
    core = client.CoreV1Api(api)
    name = "faiss-system-it"
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    try:
        yield name
    finally:
        core.delete_namespace(name)


def run_in_cluster(api: client.ApiClient, kubectl: Kubectl, documents: list[Obj], system: str,
                   suffix: str) -> tuple[str, str]:
    """Apply the role under `suffix`, a story namespace, and an operator pod watching it."""
    for doc in renamed(documents, suffix, system):
        kubectl.apply(doc)
    story = environment.create(api, f"in-{suffix}")
    account = f"{one(documents, 'ServiceAccount')['metadata']['name']}-{suffix}"
    pod = f"operator-{suffix}"
    client.CoreV1Api(api).create_namespaced_pod(system, operator_pod(pod, system, account, story.name))
    return story.name, pod


def test_story_11_the_operator_as_a_pod_with_the_least_privilege_role_makes_the_first_index_ready(
        api: client.ApiClient, crd: None, kubectl: Kubectl, cluster: cluster_mod.Cluster,
        system_namespace: str) -> None:
    documents = rbac_documents()
    namespace, pod = run_in_cluster(api, kubectl, documents, system_namespace, "full")
    try:
        kubectl.apply(body(NAME, SPEC, namespace=namespace))
        index = Index(api, namespace, NAME)

        def operator_alive() -> None:
            status = client.CoreV1Api(api).read_namespaced_pod(pod, system_namespace).status
            restarts = sum(c.restart_count for c in status.container_statuses or [])
            if restarts:
                raise AssertionError(f"the operator pod restarted; its log:\n"
                                     f"{cluster.container_log(system_namespace, pod, 'operator')[-4000:]}")
        obj = index.wait_ready(BUILD_READY_SECONDS, alive=operator_alive)
        assert obj["status"]["recall"] > 0.5 and obj["status"]["p99LatencyMs"] > 0
        (job,) = index.build_jobs()
        assert job == f"{NAME}-build-{obj['status']['currentRevision']}"
    finally:
        environment.delete(api, namespace)


def test_story_11_one_verb_less_in_the_role_and_the_operator_cannot_build(
        api: client.ApiClient, crd: None, kubectl: Kubectl, cluster: cluster_mod.Cluster,
        system_namespace: str) -> None:
    documents, verb = without_job_patch(rbac_documents())
    namespace, pod = run_in_cluster(api, kubectl, documents, system_namespace, "short")
    try:
        kubectl.apply(body(NAME, SPEC, namespace=namespace))
        index = Index(api, namespace, NAME)

        def refused() -> bool:
            try:
                log = cluster.container_log(system_namespace, pod, "operator")
            except FileNotFoundError:  # its container has not started yet (from the image under runc)
                return False
            return "forbidden" in log.lower() and "jobs" in log
        wait_for(refused, 120, f"the operator logging the refused {verb} of a Job")
        assert index.build_jobs() == [], "a Job was made although the role lacks that verb"
        assert (index.status().get("phase") or "Pending") in ("Pending", "Building")
    finally:
        environment.delete(api, namespace)
