"""A finished rollback leaves only its target behind the Service: no scale-down delay for what the
admin (or the failed analysis) rolled away from, nor for an older revision still in its delay.

Each story starts from a promotion with a long scaleDownDelaySeconds (600 s), so any revision kept
by the delay would still be there when the rollback finishes.
"""

from __future__ import annotations

from typing import Any

from faiss_operator.controller.decision import manifests

from tests.controller import scenarios
from tests.controller.builders import Cluster, at, passing, report, revision_of, spec, with_config

R1 = revision_of(spec())
R2 = revision_of(with_config(spec(), m=32))
R3 = revision_of(with_config(spec(), m=48))


def _long_delay() -> dict[str, Any]:
    wire = spec()
    wire["rollout"] = {**wire["rollout"], "scaleDownDelaySeconds": 600}
    return wire


def _deployments(cluster: Cluster) -> dict[str, int]:
    return {name: obj["spec"]["replicas"] for (kind, name), obj in cluster.objects.items() if kind == "Deployment"}


def _name(revision: str) -> str:
    return manifests.deployment_name("alerts", revision)


def _promoted_with_r1_in_its_delay() -> Cluster:
    cluster = scenarios.promoted(_long_delay())  # R2 Active at t=191, R1 Retired until t=791
    assert _deployments(cluster) == {_name(R1): 4, _name(R2): 4}
    return cluster


def _r3_in_its_canary_with_r1_in_its_delay() -> Cluster:
    """R2 serves, R1 is in its scale-down delay, and a new revision R3 takes its first canary step."""
    cluster = _promoted_with_r1_in_its_delay()
    cluster.wire = with_config(cluster.wire, m=48)  # R3
    cluster.generation += 1
    cluster.reconcile(at(200))
    cluster.finish_job(R3, message=report())
    cluster.reconcile(at(210))
    cluster.ready_all()
    cluster.reconcile(at(220))
    return cluster


def test_an_admin_rollback_leaves_only_its_target_when_it_finishes() -> None:
    cluster = _promoted_with_r1_in_its_delay()
    cluster.reconcile(at(791))  # R1's delay is over: its Deployment is gone
    cluster.annotations["faiss.dev/rollback"] = "previous"
    plan = cluster.reconcile(at(800))
    assert (plan.status.phase, plan.status.candidate_revision) == ("RollingBack", R1)
    assert _deployments(cluster) == {_name(R1): 4, _name(R2): 4}  # R2 serves until R1 is whole
    cluster.ready_all()
    plan = cluster.reconcile(at(801))
    assert (plan.status.current_revision, plan.status.candidate_revision, plan.status.scale_downs) == (R1, None, [])
    assert plan.status.revision(R2).state == "RolledBack"  # type: ignore[union-attr]
    assert _deployments(cluster) == {_name(R1): 4}


def test_a_rollback_to_a_revision_still_in_its_delay_finishes_at_once_and_leaves_only_it() -> None:
    cluster = _promoted_with_r1_in_its_delay()
    cluster.annotations["faiss.dev/rollback"] = "previous"
    plan = cluster.reconcile(at(200))
    assert (plan.status.phase, plan.status.current_revision, plan.status.scale_downs) == ("Degraded", R1, [])
    assert plan.status.revision(R2).state == "RolledBack"  # type: ignore[union-attr]
    assert _deployments(cluster) == {_name(R1): 4}


def test_an_automatic_rollback_also_takes_out_a_revision_still_in_its_scale_down_delay() -> None:
    cluster = _r3_in_its_canary_with_r1_in_its_delay()
    assert (cluster.status.candidate_revision, cluster.status.phase) == (R3, "Progressing")
    assert _deployments(cluster) == {_name(R1): 4, _name(R2): 4, _name(R3): 1}
    plan = cluster.reconcile(at(225), (passing(R3, 0, at(222), recall=0.5),))
    assert plan.status.revision(R3).state == "RolledBack"  # type: ignore[union-attr]
    assert (plan.status.current_revision, plan.status.scale_downs) == (R2, [])
    assert _deployments(cluster) == {_name(R2): 4}


def test_an_admin_rollback_of_a_canary_also_takes_out_a_revision_still_in_its_delay() -> None:
    cluster = _r3_in_its_canary_with_r1_in_its_delay()
    cluster.annotations["faiss.dev/rollback"] = "previous"
    plan = cluster.reconcile(at(230))
    assert plan.status.revision(R3).state == "RolledBack"  # type: ignore[union-attr]
    assert (plan.status.current_revision, plan.status.scale_downs) == (R2, [])
    assert _deployments(cluster) == {_name(R2): 4}


def test_a_promotion_still_keeps_the_replaced_revision_for_its_delay() -> None:
    cluster = _promoted_with_r1_in_its_delay()
    plan = cluster.reconcile(at(790))
    assert [s.revision for s in plan.status.scale_downs] == [R1]
    assert _deployments(cluster) == {_name(R1): 4, _name(R2): 4}
    cluster.reconcile(at(791))
    assert _deployments(cluster) == {_name(R2): 4}
