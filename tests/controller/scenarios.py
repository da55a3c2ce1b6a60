"""Clusters at the well-known points of a FaissIndex's life, reached through the decision itself."""

from __future__ import annotations

from typing import Any

from tests.controller.builders import Cluster, at, passing, report, revision_of, spec, with_config

# Times at which each scenario leaves its cluster; tests continue from there.
SERVING_AT = 20
CANARY_AT = 50
PROMOTED_AT = 191
SCALED_DOWN_AT = 230


def building(wire: dict[str, Any] | None = None) -> Cluster:
    cluster = Cluster(wire or spec())
    cluster.reconcile(at(0))
    return cluster


def serving(wire: dict[str, Any] | None = None) -> Cluster:
    """The first revision built, deployed and Active on all replicas at t=SERVING_AT."""
    cluster = building(wire)
    cluster.finish_job(revision_of(cluster.wire), message=report())
    cluster.reconcile(at(10))
    cluster.ready_all()
    cluster.reconcile(at(SERVING_AT))
    assert cluster.status.phase == "Ready", cluster.status.phase
    return cluster


def second_spec(cluster: Cluster) -> dict[str, Any]:
    return with_config(cluster.wire, m=32)


def candidate_building(wire: dict[str, Any] | None = None) -> Cluster:
    cluster = serving(wire)
    cluster.wire = second_spec(cluster)
    cluster.generation += 1
    cluster.reconcile(at(30))
    return cluster


def canary_step0(wire: dict[str, Any] | None = None, *, ready: bool = True) -> Cluster:
    """The second revision built and at step 1 (25%); its replica ready at t=CANARY_AT if asked."""
    cluster = candidate_building(wire)
    cluster.finish_job(revision_of(cluster.wire), message=report())
    cluster.reconcile(at(40))
    if ready:
        cluster.ready_all()
        cluster.reconcile(at(CANARY_AT))
    return cluster


def canary_analysed(wire: dict[str, Any] | None = None) -> Cluster:
    cluster = canary_step0(wire)
    candidate = revision_of(cluster.wire)
    cluster.reconcile(at(55), (passing(candidate, 0, at(52)),))
    return cluster


def promoted(wire: dict[str, Any] | None = None) -> Cluster:
    """The second revision through both canary steps and promoted at t=PROMOTED_AT; the first
    still scaled up for the scale-down delay (30 s)."""
    cluster = canary_analysed(wire)
    candidate = revision_of(cluster.wire)
    cluster.reconcile(at(120))
    cluster.ready_all()
    cluster.reconcile(at(121))
    cluster.reconcile(at(125), (passing(candidate, 1, at(122)),))
    cluster.reconcile(at(190))
    cluster.ready_all()
    cluster.reconcile(at(PROMOTED_AT))
    assert cluster.status.current_revision == candidate, cluster.status.current_revision
    return cluster


def promoted_and_scaled_down(wire: dict[str, Any] | None = None) -> Cluster:
    """`promoted`, then past the scale-down delay: the first revision Retired, its Deployment gone."""
    cluster = promoted(wire)
    cluster.reconcile(at(SCALED_DOWN_AT))
    return cluster
