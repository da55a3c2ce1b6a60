"""The operator's own decisions never take the last ready pods away (keep_serving.py).

Each story reaches a point where the only ready pods belong to a revision the decision lets go
(superseded by a spec change, failed at its deadline), checks that its Deployment stays exactly as
it is with Degraded saying why, and that it goes once a revision that should serve has a ready
pod. An admin's abort or rollback, and a failed analysis, still take such pods at once.
"""

from __future__ import annotations

from faiss_operator.controller.decision import conditions, manifests

from tests.controller import scenarios
from tests.controller.builders import Cluster, at, passing, report, revision_of, spec, with_config

R1 = revision_of(spec())
R2 = revision_of(with_config(spec(), m=32))
R3 = revision_of(with_config(spec(), m=48))
R4 = revision_of(with_config(spec(), efSearch=64))  # R1's artifact, no build-time recall


def _deployments(cluster: Cluster) -> dict[str, int]:
    return {name: obj["spec"]["replicas"] for (kind, name), obj in cluster.objects.items() if kind == "Deployment"}


def _name(revision: str) -> str:
    return manifests.deployment_name("alerts", revision)


def _degraded(cluster: Cluster) -> tuple[str, str, str]:
    found = conditions.get(cluster.status.conditions, conditions.DEGRADED)
    assert found is not None
    return (found.status, found.reason, found.message)


def _kept(revision: str) -> str:
    return f"revision {revision} keeps its ready pods behind the Service until a revision that should serve has one"


def _change(cluster: Cluster, **config: object) -> None:
    cluster.wire = with_config(cluster.wire, **config)
    cluster.generation += 1


def _first_deploy_partly_ready() -> Cluster:
    cluster = scenarios.building()
    cluster.finish_job(R1, message=report())
    cluster.reconcile(at(10))
    cluster.ready(R1, 1)  # 1/4: not promoted before its deadline
    cluster.reconcile(at(20))
    assert (cluster.status.current_revision, cluster.status.candidate_revision) == (None, R1)
    return cluster


def test_a_spec_change_before_the_first_revision_is_promoted_keeps_its_ready_pods_until_the_next_serves() -> None:
    cluster = _first_deploy_partly_ready()
    _change(cluster, m=32)
    plan = cluster.reconcile(at(30))
    assert plan.status.revision(R1).state == "Superseded"  # type: ignore[union-attr]
    assert plan.status.candidate_revision == R2
    assert _deployments(cluster) == {_name(R1): 4}  # untouched: its one ready pod serves
    assert _degraded(cluster) == ("True", "KeptServing", _kept(R1))
    cluster.finish_job(R2, message=report())
    cluster.reconcile(at(40))
    assert _deployments(cluster) == {_name(R1): 4, _name(R2): 4}  # R2 deploying, not ready yet
    cluster.ready(R2, 1)
    cluster.reconcile(at(50))
    assert _deployments(cluster) == {_name(R2): 4}  # R2 has a ready pod: R1 goes
    assert _degraded(cluster)[1] != "KeptServing"


def test_a_first_deploy_failing_at_its_deadline_with_every_pod_ready_keeps_them() -> None:
    cluster = scenarios.building()
    cluster.finish_job(R1, message=report())
    cluster.reconcile(at(10))
    _change(cluster, efSearch=64)  # R4 reuses R1's artifact: it needs a live analysis
    cluster.reconcile(at(20))
    cluster.ready_all()
    cluster.reconcile(at(30))  # asks for an analysis, which never concludes
    plan = cluster.reconcile(at(320))
    assert plan.status.revision(R4).state == "Failed"  # type: ignore[union-attr]
    assert plan.status.phase == "Failed"
    assert _deployments(cluster) == {_name(R4): 4}
    status, reason, message = _degraded(cluster)
    assert (status, reason) == ("True", "RevisionFailed")
    assert message.endswith("; " + _kept(R4))


def _canary_with_unready_stable() -> Cluster:
    cluster = scenarios.canary_step0()  # R1 stable (4), R2 canary (1), all ready at t=50
    cluster.ready(R1, 0)  # every stable pod unready: the canary's pod is the only one serving
    cluster.reconcile(at(51))
    return cluster


def test_a_spec_change_keeps_a_canary_that_is_the_only_revision_with_ready_pods() -> None:
    cluster = _canary_with_unready_stable()
    _change(cluster, m=48)
    plan = cluster.reconcile(at(60))
    assert plan.status.revision(R2).state == "Superseded"  # type: ignore[union-attr]
    assert _deployments(cluster) == {_name(R1): 4, _name(R2): 1}
    assert _degraded(cluster) == ("True", "KeptServing", _kept(R2))
    cluster.ready(R1, 1)  # the stable serves again
    cluster.reconcile(at(70))
    assert _deployments(cluster) == {_name(R1): 4}


def test_an_abort_takes_the_only_ready_pods_when_an_admin_asks() -> None:
    cluster = _canary_with_unready_stable()
    cluster.annotations["faiss.dev/abort"] = "true"
    plan = cluster.reconcile(at(60))
    assert plan.status.revision(R2).state == "RolledBack"  # type: ignore[union-attr]
    assert _deployments(cluster) == {_name(R1): 4}


def test_a_failed_analysis_takes_the_only_ready_pods() -> None:
    cluster = _canary_with_unready_stable()
    plan = cluster.reconcile(at(60), (passing(R2, 0, at(55), recall=0.5),))
    assert plan.status.revision(R2).state == "RolledBack"  # type: ignore[union-attr]
    assert _deployments(cluster) == {_name(R1): 4}


def test_a_held_revision_keeps_its_files_while_history_is_pruned() -> None:
    wire = spec()
    wire["rollout"] = {**wire["rollout"], "revisionHistoryLimit": 0}
    cluster = scenarios.building(wire)
    cluster.finish_job(R1, message=report())
    cluster.reconcile(at(10))
    cluster.ready(R1, 1)
    cluster.reconcile(at(20))
    _change(cluster, m=32)
    plan = cluster.reconcile(at(30))
    assert plan.status.revision(R1) is not None
    assert not [a for a in plan.actions if "cleanup" in getattr(a, "name", "")]
