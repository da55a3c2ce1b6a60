"""Clusters at the well-known points of a FaissIndex's life, reached through the decision itself."""

from __future__ import annotations

from typing import Any

from tests.controller.builders import Cluster, at, passing, report, revision_of, spec, with_config

# Times at which each scenario leaves its cluster; tests continue from there.
SERVING_AT = 20
CANARY_AT = 50


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
