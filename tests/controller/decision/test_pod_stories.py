"""Stories of what the operator does with its pods: a build killed for memory, a serving pod
killed for memory, and serving-only pod settings changed in place (no new revision).

Each states the whole expected plan (tests.controller.builders.Summary) and the conditions."""

from __future__ import annotations

import json
from typing import Any

from faiss_operator.api import status as api_status
from faiss_operator.controller.decision import conditions, manifests

from tests.controller import scenarios
from tests.controller.builders import Cluster, Summary, at, relabel_summary, revision_of, spec, summarize

MIB = 1024 * 1024
MEASURED_INPUT = json.dumps(
    {"status": "Running", "phase": "build", "revision": "r", "source": "/mnt/pvc/embeddings/alerts/v1.npy",
     "vectors": 20000, "dimension": 384, "input_bytes": 20000 * 384 * 4, "metadata_records": 0}
)  # fmt: skip


def condition(status: api_status.FaissIndexStatus, type_: str) -> tuple[str, str, str]:
    found = conditions.get(status.conditions, type_)
    assert found is not None, type_
    return (found.status, found.reason, found.message)


def building_with_limit(limit: str | None) -> Cluster:
    build: dict[str, Any] = {} if limit is None else {"resources": {"limits": {"memory": limit}}}
    return scenarios.building(spec(build=build))


def test_a_build_killed_for_memory_ends_its_revision_with_BuildOOMKilled_naming_the_limit_and_the_input() -> None:
    cluster = building_with_limit("256Mi")
    r1 = revision_of(cluster.wire)
    cluster.finish_job(r1, failed="killed", terminated={"exitCode": 137, "reason": "OOMKilled", "message": MEASURED_INPUT})
    plan = cluster.reconcile(at(10))
    assert relabel_summary(summarize(plan), {r1: "R1"}) == Summary(
        actions=(), phase="Failed", current=None, candidate=None, rollout=None, revisions=(("R1", "Failed"),)
    )
    (entry,) = plan.status.revisions
    message = (
        "the build container was killed for memory (OOMKilled, exit code 137) at its memory limit 256Mi, "
        "its input: 20000 vectors x 384 dimensions = 29.3 MiB as float32; "
        "raise spec.build.resources.limits.memory, or choose an index type that needs less memory"
    )
    assert (entry.reason, entry.message) == ("BuildOOMKilled", message)
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "RevisionFailed"), ("Normal", "PhaseFailed")]
    assert condition(plan.status, conditions.INDEX_BUILT) == ("False", "BuildFailed", f"revision {r1}: {message}")


def test_a_build_killed_before_it_measured_its_input_and_with_no_limit_says_so() -> None:
    cluster = building_with_limit(None)
    r1 = revision_of(cluster.wire)
    cluster.finish_job(r1, failed="killed", terminated={"exitCode": 137, "reason": "OOMKilled", "message": ""})
    plan = cluster.reconcile(at(10))
    (entry,) = plan.status.revisions
    assert (entry.state, entry.reason, entry.message) == (
        "Failed",
        "BuildOOMKilled",
        "the build container was killed for memory (OOMKilled, exit code 137) with no memory limit set "
        "(the node ran out), before it had measured its input; "
        "raise spec.build.resources.limits.memory, or choose an index type that needs less memory",
    )


def test_exit_code_137_counts_as_a_memory_kill_but_not_when_the_job_ran_past_its_deadline() -> None:
    cluster = building_with_limit("1Gi")
    r1 = revision_of(cluster.wire)
    killed = {"exitCode": 137, "reason": "Error", "message": MEASURED_INPUT}
    by_code = cluster.snapshot()
    by_code.finish_job(r1, failed="killed", terminated=killed)
    assert by_code.reconcile(at(10)).status.revisions[0].reason == "BuildOOMKilled"
    cluster.finish_job(r1, failed="killed", terminated=killed)
    job = cluster.objects[("Job", manifests.job_name("alerts", r1, 0))]
    job["status"]["conditions"][0].update(reason="DeadlineExceeded", message="Job was active longer than specified")
    entry = cluster.reconcile(at(10)).status.revisions[0]
    assert (entry.reason, entry.message) == (
        "BuildFailed",
        "DeadlineExceeded: Job was active longer than specified; last build pod exited with code 137 (Error): "
        + MEASURED_INPUT,
    )


def serving_pod(name: str, *, ready: bool, last: dict[str, Any] | None) -> dict[str, Any]:
    status: dict[str, Any] = {"name": manifests.SERVING_CONTAINER, "ready": ready, "restartCount": 3 if last else 0,
                              "state": {"running": {}}}  # fmt: skip
    if last is not None:
        status["lastState"] = {"terminated": last}
    return {"metadata": {"name": name, "labels": {manifests.LABEL_COMPONENT: "serving"}},
            "status": {"conditions": [{"type": "Ready", "status": str(ready)}], "containerStatuses": [status]}}  # fmt: skip


def test_a_serving_pod_killed_for_memory_shows_in_Degraded_with_its_reason_while_the_others_serve() -> None:
    wire = spec(serving={"replicas": 4, "resources": {"limits": {"memory": "300Mi"}}})
    cluster = scenarios.serving(wire)
    r1 = revision_of(wire)
    cluster.ready(r1, 3)
    oom = {"exitCode": 137, "reason": "OOMKilled"}
    cluster.serving_pods = [
        serving_pod("alerts-a", ready=True, last=None),
        serving_pod("alerts-b", ready=False, last=oom),
        # killed once, back and ready: it serves, so it is not a reason for Degraded
        serving_pod("alerts-c", ready=True, last=oom),
    ]
    plan = cluster.reconcile(at(30))
    assert relabel_summary(summarize(plan), {r1: "R1"}) == Summary(
        actions=(), phase="Ready", current="R1", candidate=None, rollout=None, revisions=(("R1", "Active"),)
    )
    assert condition(plan.status, conditions.DEGRADED) == (
        "True",
        "ServingOOMKilled",
        "pod alerts-b was OOMKilled (restarts: 3); the server ran out of memory under its memory limit 300Mi: "
        "raise spec.serving.resources.limits.memory",
    )
    assert condition(plan.status, conditions.READY) == ("True", "Serving", f"revision {r1} serves 3/4 replicas")
    # a liveness kill (exit 137, reason Error) is not a memory kill: plain ReplicasUnavailable
    cluster.serving_pods = [serving_pod("alerts-b", ready=False, last={"exitCode": 137, "reason": "Error"})]
    assert condition(cluster.reconcile(at(40)).status, conditions.DEGRADED) == (
        "True", "ReplicasUnavailable", f"3/4 replicas of {r1} ready",
    )  # fmt: skip


def test_serving_pod_settings_change_the_running_deployment_in_place_and_make_no_new_revision() -> None:
    cluster = scenarios.serving()
    r1 = revision_of(cluster.wire)
    before = cluster.objects[("Deployment", manifests.deployment_name("alerts", r1))]
    cluster.wire = spec(
        serving={
            "replicas": 4,
            "nodeSelector": {"pool": "search"},
            "runtimeClassName": "gvisor",
            "podSecurityContext": {"runAsUser": 1000},
            "podDisruptionBudget": {"minAvailable": "50%"},
        }
    )
    cluster.generation += 1
    assert revision_of(cluster.wire) == r1
    plan = cluster.reconcile(at(30))
    assert relabel_summary(summarize(plan), {r1: "R1"}) == Summary(
        actions=(("Apply", "Deployment", "alerts-R1", 4), ("Apply", "PodDisruptionBudget", "alerts")),
        phase="Ready",
        current="R1",
        candidate=None,
        rollout=None,
        revisions=(("R1", "Active"),),
    )
    after = cluster.objects[("Deployment", manifests.deployment_name("alerts", r1))]
    pod = after["spec"]["template"]["spec"]
    assert (pod["nodeSelector"], pod["runtimeClassName"], pod["securityContext"]["runAsUser"]) == (
        {"pool": "search"}, "gvisor", 1000
    )
    assert after["metadata"]["name"] == before["metadata"]["name"]
    assert after["spec"]["selector"] == before["spec"]["selector"]
    assert cluster.objects[("PodDisruptionBudget", "alerts")]["spec"]["minAvailable"] == "50%"
    # the budget switched off: the one made before goes, nothing else moves
    cluster.wire = spec(serving={"replicas": 4, "nodeSelector": {"pool": "search"}, "runtimeClassName": "gvisor",
                                 "podSecurityContext": {"runAsUser": 1000},
                                 "podDisruptionBudget": {"enabled": False}})  # fmt: skip
    plan = cluster.reconcile(at(40))
    assert summarize(plan).actions == (("Delete", "PodDisruptionBudget", "alerts"),)
    assert ("PodDisruptionBudget", "alerts") not in cluster.objects
    assert summarize(cluster.reconcile(at(50))).actions == ()


def test_the_serving_deployment_requests_the_memory_its_build_measured() -> None:
    cluster = scenarios.serving(spec(serving={"replicas": 4, "resources": {"limits": {"cpu": "2"}}}))
    r1 = revision_of(cluster.wire)
    deployment = cluster.objects[("Deployment", manifests.deployment_name("alerts", r1))]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    # builders.report(): memory_bytes 123456, vectors 5000; 2 CPUs -> 2 processes:
    # 0.12 + 65 + 20 + 6 + 2 x 5000 x 40 B (0.38) MiB = 91.5 -> 92Mi
    assert container["resources"] == {"limits": {"cpu": "2"}, "requests": {"memory": "92Mi"}}


def test_a_build_killed_mid_add_says_the_phase_and_the_peak_anonymous_memory_it_had_reached() -> None:
    """A builder that keeps its termination log current at every progress line (issue 21) leaves
    where it was and the peak it held: what to size build.resources.limits.memory from."""
    cluster = building_with_limit("256Mi")
    r1 = revision_of(cluster.wire)
    progressed = {**json.loads(MEASURED_INPUT), "build_phase": "add", "percent": 40, "peak_anon_bytes": 250 * MIB}
    cluster.finish_job(
        r1, failed="killed", terminated={"exitCode": 137, "reason": "OOMKilled", "message": json.dumps(progressed)}
    )
    plan = cluster.reconcile(at(10))
    (entry,) = plan.status.revisions
    assert (entry.reason, entry.message) == ("BuildOOMKilled", (
        "the build container was killed for memory (OOMKilled, exit code 137) at its memory limit 256Mi, "
        "its input: 20000 vectors x 384 dimensions = 29.3 MiB as float32, killed in phase add at 40% holding "
        "250 MiB of anonymous memory at its peak; "
        "raise spec.build.resources.limits.memory, or choose an index type that needs less memory"
    ))  # fmt: skip
