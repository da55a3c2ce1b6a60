"""Raw child objects become the frozen views the decision reads, each fact read once, and what a
child lacks (a label, an IP, a port, a readable record) is said as None rather than guessed.

How a build Job's outcome is read from it and its pods: tests/controller/decision/test_build_report.py.
"""

from __future__ import annotations

from typing import Any

from faiss_operator.controller.decision import observed
from faiss_operator.controller.runtime import child_views

LABELS = {"faiss.dev/index": "alerts", "faiss.dev/revision": "5d41c2", "faiss.dev/component": "serving"}


def serving_pod(name: str, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": LABELS},
        "spec": {"containers": [{"name": "server", "ports": [{"name": "http", "containerPort": 8080}]}]},
        "status": status,
    }


def build_pod(job: str, phase: str, message: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"{job}-x",
            "labels": {"faiss.dev/component": "build", "faiss.dev/revision": "5d41c2", "faiss.dev/build-job": job},
        },
        "status": {"phase": phase, "containerStatuses": [{"name": "build", "state": {"terminated": {"message": message}}}]},
    }


def test_a_deployment_is_read_once_into_its_view() -> None:
    raw = {
        "metadata": {
            "name": "alerts-5d41c2",
            "labels": LABELS,
            "annotations": {"faiss.dev/spec-hash": "abc", "faiss.dev/revision-record": '{"name":"5d41c2"}'},
        },
        "spec": {"replicas": 3},
        "status": {"readyReplicas": 2},
    }
    assert child_views.deployment_view(raw) == observed.ObservedDeployment(
        name="alerts-5d41c2", revision="5d41c2", component="serving", spec_hash="abc", replicas=3,
        ready_replicas=2, record='{"name":"5d41c2"}',
    )  # fmt: skip


def test_what_a_hand_made_deployment_lacks_is_none() -> None:
    raw = {"metadata": {"name": "stray", "annotations": {"faiss.dev/revision-record": 7}}, "spec": {"replicas": "3"}}
    assert child_views.deployment_view(raw) == observed.ObservedDeployment(
        name="stray", revision=None, component=None, spec_hash=None, replicas=None, ready_replicas=0, record=None
    )


def test_a_serving_pod_has_an_address_once_it_has_an_ip_and_its_port() -> None:
    ready = [{"type": "Ready", "status": "True"}]
    assert child_views.pod_view(serving_pod("a", podIP="10.0.0.1", conditions=ready)) == observed.ObservedPod(
        name="a", revision="5d41c2", component="serving", ready=True, terminating=False, address="http://10.0.0.1:8080"
    )
    assert child_views.pod_view(serving_pod("b", conditions=ready)).address is None
    portless = serving_pod("c", podIP="10.0.0.3")
    portless["spec"]["containers"][0]["ports"] = [{"name": "metrics", "containerPort": 9090}]
    assert child_views.pod_view(portless).address is None


def test_a_pod_being_deleted_or_not_ready_says_so() -> None:
    pod = serving_pod("a", podIP="10.0.0.1", conditions=[{"type": "Ready", "status": "False"}])
    pod["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    view = child_views.pod_view(pod)
    assert (view.ready, view.terminating) == (False, True)


def test_children_keep_serving_pods_and_give_each_job_the_outcome_of_its_own_pods() -> None:
    jobs = [
        {"metadata": {"name": "alerts-build-5d41c2", "labels": {"faiss.dev/component": "build"}}, "status": {"succeeded": 1}},
        {"metadata": {"name": "alerts-build-5d41c2-1", "labels": {"faiss.dev/component": "build"}}, "status": {"succeeded": 1}},
    ]  # fmt: skip
    pods = [
        build_pod("alerts-build-5d41c2", "Succeeded", '{"first":1}'),
        build_pod("alerts-build-5d41c2-1", "Succeeded", '{"second":1}'),
        serving_pod("alerts-5d41c2-a", podIP="10.0.0.1"),
    ]
    children = child_views.children(
        jobs=jobs, pods=pods, services=[{"metadata": {"name": "alerts", "labels": {"faiss.dev/index": "alerts"}}}],
        claims=frozenset({"embeddings"}),
    )  # fmt: skip
    assert [(j.name, j.outcome) for j in children.jobs] == [
        ("alerts-build-5d41c2", observed.JobSucceeded(termination_message='{"first":1}')),
        ("alerts-build-5d41c2-1", observed.JobSucceeded(termination_message='{"second":1}')),
    ]
    assert [p.name for p in children.serving_pods] == ["alerts-5d41c2-a"]
    assert children.services == (observed.ObservedObject(name="alerts"),)
    assert (children.deployments, children.disruption_budgets, children.claims) == ((), (), frozenset({"embeddings"}))
    assert children.job("alerts-build-5d41c2-1") is children.jobs[1]
    assert children.job("alerts-build-other") is None
