"""Progressing, Degraded and the revision's message name why pods are missing (pod_problems.py):
a quota or PodSecurity refusing the ReplicaSet's pods (FailedCreate), no node for a pod
(Unschedulable), an image that cannot be pulled, a container crash-looping."""

from __future__ import annotations

from typing import Any

import pytest
from faiss_operator.controller.decision import conditions, manifests

from tests.controller import scenarios
from tests.controller.builders import Cluster, at, revision_of, spec, with_config

R1 = revision_of(spec())
R2 = revision_of(with_config(spec(), m=32))

QUOTA = (
    'pods "alerts-r2-6d8f-x" is forbidden: exceeded quota: compute, requested: requests.memory=2Gi, '
    "used: requests.memory=8Gi, limited: requests.memory=8Gi"
)


def _condition(cluster: Cluster, type_: str) -> tuple[str, str, str]:
    found = conditions.get(cluster.status.conditions, type_)
    assert found is not None
    return (found.status, found.reason, found.message)


def _replica_failure(cluster: Cluster, revision: str, message: str) -> None:
    deployment = cluster.objects[("Deployment", manifests.deployment_name("alerts", revision))]
    deployment["status"] = {
        "replicas": 0,
        "readyReplicas": 0,
        "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
            {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": message},
        ],
    }


def _pod(revision: str, status: dict[str, Any]) -> dict[str, Any]:
    labels = {manifests.LABEL_COMPONENT: manifests.COMPONENT_SERVING, manifests.LABEL_REVISION: revision}
    return {"metadata": {"name": f"alerts-{revision}-abc", "labels": labels}, "status": status}


def _blocked_canary() -> Cluster:
    cluster = scenarios.canary_step0(ready=False)  # R2's canary replica not ready at t=40
    _replica_failure(cluster, R2, QUOTA)
    cluster.reconcile(at(45))
    return cluster


def test_a_canary_blocked_by_a_quota_says_so_in_progressing() -> None:
    cluster = _blocked_canary()
    assert _condition(cluster, "Progressing") == (
        "True",
        "CanaryStep",
        f"step 1/2: 25% on {R2}; 0/1 replicas of {R2} ready: FailedCreate: {QUOTA}",
    )
    assert cluster.status.current_revision == R1  # the stable keeps serving meanwhile


def test_the_revision_rolled_back_at_its_deadline_keeps_the_reason_in_its_message() -> None:
    cluster = _blocked_canary()
    plan = cluster.reconcile(at(40 + 300))
    entry = plan.status.revision(R2)
    assert entry is not None and (entry.state, entry.reason) == ("RolledBack", "ProgressDeadlineExceeded")
    assert entry.message == f"step 1: 0/1 candidate replicas ready (FailedCreate: {QUOTA})"
    status, reason, message = _condition(cluster, "Degraded")
    assert (status, reason) == ("True", "RevisionRolledBack") and QUOTA in message


@pytest.mark.parametrize(
    ("pod_status", "said"),
    [
        (
            {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                                 "message": "0/1 nodes are available: 1 Insufficient memory."}]},
            "Unschedulable: 0/1 nodes are available: 1 Insufficient memory.",
        ),
        (
            {"phase": "Pending", "containerStatuses": [{"name": "serve", "ready": False, "state": {"waiting": {
                "reason": "ImagePullBackOff", "message": 'Back-off pulling image "faiss-operator:typo"'}}}]},
            'ImagePullBackOff: Back-off pulling image "faiss-operator:typo"',
        ),
        (
            {"phase": "Running", "containerStatuses": [{"name": "serve", "ready": False, "state": {"waiting": {
                "reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}}}]},
            "CrashLoopBackOff: back-off 40s restarting failed container",
        ),
    ],
    ids=["unschedulable", "image pull", "crash loop"],
)  # fmt: skip
def test_pod_statuses_name_why_a_canary_replica_is_not_ready(pod_status: dict[str, Any], said: str) -> None:
    cluster = scenarios.canary_step0(ready=False)
    cluster.serving_pods = [_pod(R2, pod_status), _pod(R1, {"phase": "Running"})]
    cluster.reconcile(at(45))
    assert _condition(cluster, "Progressing")[2] == f"step 1/2: 25% on {R2}; 0/1 replicas of {R2} ready: {said}"


def test_degraded_names_why_replicas_of_the_serving_revision_are_missing() -> None:
    cluster = scenarios.serving()
    cluster.ready(R1, 3)
    cluster.serving_pods = [
        _pod(R1, {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                                                       "reason": "Unschedulable", "message": "no node"}]}),
    ]  # fmt: skip
    cluster.reconcile(at(30))
    assert _condition(cluster, "Degraded") == ("True", "ReplicasUnavailable", f"3/4 replicas of {R1} ready: Unschedulable: no node")


def test_a_ready_canary_says_nothing_of_pods() -> None:
    cluster = scenarios.canary_step0()
    cluster.serving_pods = [_pod(R2, {"phase": "Running"})]
    cluster.reconcile(at(51))
    assert _condition(cluster, "Progressing")[2] == f"step 1/2: 25% on {R2}"
