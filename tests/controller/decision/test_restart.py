"""A restart at any moment continues where the previous run stopped.

A full migration (first build, deploy, a new revision, two canary steps with analysis,
promotion, scale-down) is driven through the decision against the simulated cluster, with a
deterministic world: Jobs finish, replicas become ready, analyses pass. Every intermediate state
is recorded and fed back in: the decision must give the same plan again, a fresh run from that
state must end exactly where the original ended, and so must a run that loses the status write
of the step (the operator died between acting and recording).
"""

from __future__ import annotations

import copy
import dataclasses

import pytest
from faiss_operator.controller.decision import actions, analysis, decide

from tests.controller.builders import SETTINGS, Cluster, at, passing, report, revision_of, spec, with_config

TICK = 5
MAX_TICKS = 200
FIRST = spec()
SECOND = with_config(FIRST, m=32)


@dataclasses.dataclass
class Moment:
    cluster: Cluster
    seconds: int
    measurements: tuple[analysis.Measurement, ...]


def world(cluster: Cluster, plan: actions.Plan, seconds: int) -> tuple[analysis.Measurement, ...]:
    """What the cluster and the prober do between two reconciles."""
    for (kind, _), obj in cluster.objects.items():
        if kind == "Job" and not obj.get("status") and "-build-" in obj["metadata"]["name"]:
            cluster.finish_job(obj["metadata"]["labels"]["faiss.dev/revision"], message=report())
    cluster.ready_all()
    if (
        cluster.status.phase == "Ready"
        and cluster.status.current_revision == revision_of(FIRST)
        and cluster.wire == FIRST
    ):
        cluster.wire = SECOND  # the user applies the new spec once the first revision serves
        cluster.generation += 1
    return tuple(passing(a.candidate, a.step, at(seconds + 1)) for a in plan.actions if isinstance(a, actions.Analyze))


def finished(cluster: Cluster) -> bool:
    status = cluster.status
    return (
        status.current_revision == revision_of(SECOND)
        and status.candidate_revision is None
        and not status.scale_downs
        and len([k for k in cluster.objects if k[0] == "Deployment"]) == 1
    )


def drive(moment: Moment, *, lose_first_status_write: bool = False) -> tuple[Cluster, list[Moment]]:
    cluster, seconds, measurements = moment.cluster, moment.seconds, moment.measurements
    history = []
    for _ in range(MAX_TICKS):
        if finished(cluster):
            return cluster, history
        history.append(Moment(copy.deepcopy(cluster), seconds, measurements))
        plan = decide.decide(cluster.resource(), cluster.children(), measurements, at(seconds), settings=SETTINGS)
        if lose_first_status_write:
            plan = dataclasses.replace(plan, status_changed=False)
            lose_first_status_write = False
        cluster.apply(plan)
        seconds += TICK
        measurements = world(cluster, plan, seconds)
    raise AssertionError(f"no convergence after {MAX_TICKS} ticks: {cluster.status}")


ORIGINAL_END, MOMENTS = drive(Moment(Cluster(FIRST), 0, ()))


def test_the_migration_passes_through_every_phase() -> None:
    phases = [m.cluster.status.phase for m in MOMENTS]
    for phase in ("Building", "Deploying", "Ready", "Progressing"):
        assert phase in phases
    weights = {
        m.cluster.status.rollout.weight
        for m in MOMENTS
        if m.cluster.status.rollout and m.cluster.status.rollout.mode == "Canary"
    }
    assert weights == {25, 50}
    assert [(e.name, e.state) for e in ORIGINAL_END.status.revisions] == [
        (revision_of(SECOND), "Active"),
        (revision_of(FIRST), "Retired"),
    ]


@pytest.mark.parametrize("index", range(len(MOMENTS)), ids=lambda i: f"moment{i}")
def test_every_state_gives_the_same_plan_again(index: int) -> None:
    moment = MOMENTS[index]
    cluster = moment.cluster
    plans = [
        decide.decide(
            cluster.resource(), cluster.children(), moment.measurements, at(moment.seconds), settings=SETTINGS
        )
        for _ in range(2)
    ]
    assert plans[0] == plans[1]


@pytest.mark.parametrize("index", range(len(MOMENTS)), ids=lambda i: f"moment{i}")
def test_a_restart_from_any_state_ends_where_the_original_ended(index: int) -> None:
    moment = copy.deepcopy(MOMENTS[index])
    end, _ = drive(moment)
    assert end.status == ORIGINAL_END.status
    assert end.objects.keys() == ORIGINAL_END.objects.keys()


@pytest.mark.parametrize("index", range(len(MOMENTS)), ids=lambda i: f"moment{i}")
def test_a_lost_status_write_or_lost_measurement_still_converges(index: int) -> None:
    moment = copy.deepcopy(MOMENTS[index])
    moment.measurements = ()  # the prober's result lived in the dead process
    end, _ = drive(moment, lose_first_status_write=True)
    assert end.status.current_revision == revision_of(SECOND)
    assert [(e.name, e.state) for e in end.status.revisions] == [
        (revision_of(SECOND), "Active"),
        (revision_of(FIRST), "Retired"),
    ]
    assert end.status.phase == "Ready"
