"""Every transition of the state machine, as a table of whole expected plans.

Each case starts from a cluster reached through the decision itself (see scenarios.py), lets the
world change (a Job finishes, replicas become ready, an admin annotates, the spec changes) and
states the whole plan that must follow: actions in order, phase, revisions and rollout position.
Revision names are hashes; `R1` (the first spec), `R2` (m changed) and `R3` (efSearch changed)
stand for them in the expectations.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from faiss_operator.controller.decision import analysis

from tests.controller import scenarios
from tests.controller.builders import (
    Cluster,
    Summary,
    at,
    passing,
    relabel,
    relabel_summary,
    report,
    revision_of,
    spec,
    summarize,
    with_config,
)

R1 = revision_of(spec())
R2 = revision_of(with_config(spec(), m=32))
R3 = revision_of(with_config(spec(), efSearch=64))
LABELS = {R1: "R1", R2: "R2", R3: "R3"}


def _label(value: Any) -> Any:
    return relabel(value, LABELS)


def labelled(summary: Summary) -> Summary:
    return relabel_summary(summary, LABELS)


@dataclasses.dataclass(frozen=True)
class TestCase:
    __test__ = False

    reason: str
    given: Callable[[], Cluster]
    now: float
    want: Summary
    change: Callable[[Cluster], None] = lambda cluster: None
    measurements: tuple[analysis.Measurement, ...] = ()


def _set(**fields: Any) -> Callable[[Cluster], None]:
    def change(cluster: Cluster) -> None:
        for key, value in fields.items():
            setattr(cluster, key, value)

    return change


def _respec(**overrides: Any) -> Callable[[Cluster], None]:
    def change(cluster: Cluster) -> None:
        wire = dict(cluster.wire)
        for key, value in overrides.items():
            wire[key] = {**wire.get(key, {}), **value} if isinstance(value, dict) else value
        cluster.wire = wire
        cluster.generation += 1

    return change


def _annotate(key: str, value: str) -> Callable[[Cluster], None]:
    return lambda cluster: cluster.annotations.update({f"faiss.dev/{key}": value})


def _finish(revision: str, **kwargs: Any) -> Callable[[Cluster], None]:
    return lambda cluster: cluster.finish_job(revision, **kwargs)


def _then(*changes: Callable[[Cluster], None]) -> Callable[[Cluster], None]:
    def change(cluster: Cluster) -> None:
        for step in changes:
            step(cluster)

    return change


def _failed_build() -> Cluster:
    cluster = scenarios.candidate_building()
    cluster.finish_job(R2, failed="ValueError: dimension mismatch")
    cluster.reconcile(at(40))
    return cluster


def _spec(**overrides: Any) -> dict[str, Any]:
    wire = spec()
    for key, value in overrides.items():
        wire[key] = {**wire.get(key, {}), **value} if isinstance(value, dict) else value
    return wire


CANARY_ROLLOUT = ("Canary", 0, 25, False, False)
BOTH = (("R2", "Canary"), ("R1", "Active"))

# The pass after a build's outcome is recorded deletes its finished pod (it would pin its claims).
RELEASE_R1 = ("Delete", "Pod", "alerts-build-R1-pod")
RELEASE_R2 = ("Delete", "Pod", "alerts-build-R2-pod")
CASES = [
    # --- first build and first deploy ---------------------------------------------------------
    TestCase(
        "a new FaissIndex starts the build Job of its first revision",
        given=lambda: Cluster(spec()),
        now=0,
        want=Summary(
            actions=(("AddFinalizer", "faiss.dev/cleanup"), ("Apply", "Job", "alerts-build-R1")),
            phase="Building",
            current=None,
            candidate="R1",
            rollout=None,
            revisions=(("R1", "Building"),),
        ),
    ),
    TestCase(
        "while the Job runs nothing is done",
        given=scenarios.building,
        now=5,
        want=Summary((), "Building", None, "R1", None, (("R1", "Building"),)),
    ),
    TestCase(
        "a successful build that passes the gates is deployed on all replicas, with Service and PDB",
        given=scenarios.building,
        change=_finish(R1, message=report()),
        now=10,
        want=Summary(
            (
                ("Apply", "Deployment", "alerts-R1", 4),
                ("Apply", "Service", "alerts"),
                ("Apply", "PodDisruptionBudget", "alerts"),
            ),
            "Deploying",
            None,
            "R1",
            ("Deploy", 0, 100, False, False),
            (("R1", "Built"),),
        ),
    ),
    TestCase(
        "a failed build Job fails the revision",
        given=scenarios.building,
        change=_finish(R1, failed="out of memory"),
        now=10,
        want=Summary((), "Failed", None, None, None, (("R1", "Failed"),)),
    ),
    TestCase(
        "a build whose report is not JSON fails the revision",
        given=scenarios.building,
        change=_finish(R1, message="Traceback (most recent call last): ..."),
        now=10,
        want=Summary((), "Failed", None, None, None, (("R1", "Failed"),)),
    ),
    TestCase(
        "a build that passes no report fails the revision",
        given=scenarios.building,
        change=_finish(R1, message=None),
        now=10,
        want=Summary((), "Failed", None, None, None, (("R1", "Failed"),)),
    ),
    TestCase(
        "a build below minRecall fails its gates and is never deployed",
        given=scenarios.building,
        change=_finish(R1, message=report(recall=0.5)),
        now=10,
        want=Summary((), "Failed", None, None, None, (("R1", "Failed"),)),
    ),
    TestCase(
        "a build above maxP99LatencyMs fails its gates",
        given=scenarios.building,
        change=_finish(R1, message=report(p99_ms=50.0)),
        now=10,
        want=Summary((), "Failed", None, None, None, (("R1", "Failed"),)),
    ),
    TestCase(
        "the first deploy waits for every replica",
        given=lambda: _at_first_deploy(ready=3),
        now=15,
        want=Summary((RELEASE_R1,), "Deploying", None, "R1", ("Deploy", 0, 100, False, False), (("R1", "Built"),)),
    ),
    TestCase(
        "the first deploy becomes Active and Ready once all replicas are ready",
        given=lambda: _at_first_deploy(ready=4),
        now=15,
        want=Summary((RELEASE_R1,), "Ready", "R1", None, None, (("R1", "Active"),)),
    ),
    TestCase(
        "a first deploy with some replicas ready at progressDeadlineSeconds keeps them: Active, Degraded",
        given=lambda: _at_first_deploy(ready=1),
        now=10 + 300,
        want=Summary((RELEASE_R1,), "Ready", "R1", None, None, (("R1", "Active"),)),
    ),
    TestCase(
        "a first deploy with no replica ready at progressDeadlineSeconds fails and its Deployment goes",
        given=lambda: _at_first_deploy(ready=0),
        now=10 + 300,
        want=Summary(
            (("Delete", "Deployment", "alerts-R1"), RELEASE_R1), "Failed", None, None, None, (("R1", "Failed"),)
        ),
    ),
    # --- serving-only changes -----------------------------------------------------------------
    TestCase(
        "more replicas update the serving Deployment in place, without a revision",
        given=scenarios.serving,
        change=_respec(serving={"replicas": 6}),
        now=25,
        want=Summary((("Apply", "Deployment", "alerts-R1", 6),), "Ready", "R1", None, None, (("R1", "Active"),)),
    ),
    TestCase(
        "a new serving image and resources update the Deployment in place",
        given=scenarios.serving,
        change=_respec(serving={"image": "faiss:2", "resources": {"limits": {"memory": "2Gi", "cpu": 2}}}),
        now=25,
        want=Summary((("Apply", "Deployment", "alerts-R1", 4),), "Ready", "R1", None, None, (("R1", "Active"),)),
    ),
    TestCase(
        "a new serving port updates Deployment, Service and PDB stays",
        given=scenarios.serving,
        change=_respec(serving={"port": 9000}),
        now=25,
        want=Summary(
            (("Apply", "Deployment", "alerts-R1", 4), ("Apply", "Service", "alerts")),
            "Ready",
            "R1",
            None,
            None,
            (("R1", "Active"),),
        ),
    ),
    TestCase(
        "a Deployment changed by hand is put back",
        given=scenarios.serving,
        change=lambda c: c.objects[("Deployment", f"alerts-{R1}")]["spec"].update(replicas=1),
        now=25,
        want=Summary((("Apply", "Deployment", "alerts-R1", 4),), "Ready", "R1", None, None, (("R1", "Active"),)),
    ),
    TestCase(
        "a Deployment of a revision the index does not know is deleted",
        given=scenarios.serving,
        change=lambda c: c.objects.update(
            {
                ("Deployment", "alerts-stray"): {
                    "kind": "Deployment",
                    "metadata": {"name": "alerts-stray", "labels": {"faiss.dev/revision": "stray"}},
                }
            }
        ),
        now=25,
        want=Summary((("Delete", "Deployment", "alerts-stray"),), "Ready", "R1", None, None, (("R1", "Active"),)),
    ),
    # --- a new revision while the old one serves -----------------------------------------------
    TestCase(
        "an index-defining change builds a new revision while the old one serves",
        given=scenarios.serving,
        change=_respec(config={"m": 32}),
        now=30,
        want=Summary(
            (("Apply", "Job", "alerts-build-R2"),), "Building", "R1", "R2", None, (("R2", "Building"), ("R1", "Active"))
        ),
    ),
    TestCase(
        "a failed build of the new revision leaves the old one serving",
        given=scenarios.candidate_building,
        change=_finish(R2, failed="boom"),
        now=40,
        want=Summary((), "Degraded", "R1", None, None, (("R2", "Failed"), ("R1", "Active"))),
    ),
    TestCase(
        "a built candidate starts step 1: ceil(4*25/100) = 1 replica beside the stable's 4",
        given=scenarios.candidate_building,
        change=_finish(R2, message=report()),
        now=40,
        want=Summary((("Apply", "Deployment", "alerts-R2", 1),), "Progressing", "R1", "R2", CANARY_ROLLOUT, BOTH),
    ),
    TestCase(
        "an unready canary does not count: the step waits",
        given=lambda: scenarios.canary_step0(ready=False),
        now=45,
        want=Summary((RELEASE_R2,), "Progressing", "R1", "R2", CANARY_ROLLOUT, BOTH),
    ),
    TestCase(
        "a ready canary step asks for an analysis",
        given=lambda: scenarios.canary_step0(ready=False),
        change=lambda c: c.ready_all(),
        now=50,
        want=Summary((("Analyze", "R2", 0), RELEASE_R2), "Progressing", "R1", "R2", CANARY_ROLLOUT, BOTH),
    ),
    TestCase(
        "a passing analysis waits out the step's pause",
        given=scenarios.canary_step0,
        measurements=(passing(R2, 0, at(52)),),
        now=55,
        want=Summary((), "Progressing", "R1", "R2", CANARY_ROLLOUT, BOTH),
    ),
    TestCase(
        "after the pause the next step scales the candidate to ceil(4*50/100) = 2",
        given=scenarios.canary_analysed,
        now=110,
        want=Summary(
            (("Apply", "Deployment", "alerts-R2", 2),), "Progressing", "R1", "R2", ("Canary", 1, 50, False, False), BOTH
        ),
    ),
    TestCase(
        "a measurement of another revision, another step or from before the step was ready is ignored",
        given=scenarios.canary_step0,
        measurements=(passing(R1, 0, at(52)), passing(R2, 1, at(52)), passing(R2, 0, at(49))),
        now=55,
        want=Summary((("Analyze", "R2", 0),), "Progressing", "R1", "R2", CANARY_ROLLOUT, BOTH),
    ),
    TestCase(
        "an inconclusive analysis asks again",
        given=scenarios.canary_step0,
        measurements=(passing(R2, 0, at(52), samples=0),),
        now=55,
        want=Summary((("Analyze", "R2", 0),), "Progressing", "R1", "R2", CANARY_ROLLOUT, BOTH),
    ),
    TestCase(
        "a failing analysis with autoRollback rolls back: the canary goes, the stable never moved",
        given=scenarios.canary_step0,
        measurements=(passing(R2, 0, at(52), recall=0.5),),
        now=55,
        want=Summary(
            (("Delete", "Deployment", "alerts-R2"),),
            "Degraded",
            "R1",
            None,
            None,
            (("R2", "RolledBack"), ("R1", "Active")),
        ),
    ),
    TestCase(
        "within failureLimit a failing analysis is tolerated and repeated",
        given=lambda: scenarios.canary_step0(_spec(rollout={"analysis": {"failureLimit": 1}})),
        measurements=(passing(R2, 0, at(52), recall=0.5),),
        now=55,
        want=Summary((("Analyze", "R2", 0),), "Progressing", "R1", "R2", CANARY_ROLLOUT, BOTH),
    ),
    TestCase(
        "a candidate slower than maxLatencyRatio x stable fails its analysis",
        given=lambda: scenarios.canary_step0(_spec(rollout={"analysis": {"maxLatencyRatio": 1.5}})),
        measurements=(passing(R2, 0, at(52), p99_latency_ms=1.6),),
        now=55,
        want=Summary(
            (("Delete", "Deployment", "alerts-R2"),),
            "Degraded",
            "R1",
            None,
            None,
            (("R2", "RolledBack"), ("R1", "Active")),
        ),
    ),
    TestCase(
        "without autoRollback, onFailure Pause holds the canary where it is",
        given=lambda: scenarios.canary_step0(_spec(rollout={"autoRollback": False, "onFailure": "Pause"})),
        measurements=(passing(R2, 0, at(52), recall=0.5),),
        now=55,
        want=Summary((), "Progressing", "R1", "R2", ("Canary", 0, 25, False, True), BOTH),
    ),
    TestCase(
        "without autoRollback, onFailure Abort removes the candidate as Failed",
        given=lambda: scenarios.canary_step0(_spec(rollout={"autoRollback": False, "onFailure": "Abort"})),
        measurements=(passing(R2, 0, at(52), recall=0.5),),
        now=55,
        want=Summary(
            (("Delete", "Deployment", "alerts-R2"),), "Degraded", "R1", None, None, (("R2", "Failed"), ("R1", "Active"))
        ),
    ),
    TestCase(
        "a canary step that misses progressDeadlineSeconds rolls back",
        given=lambda: scenarios.canary_step0(ready=False),
        now=40 + 300,
        want=Summary(
            (("Delete", "Deployment", "alerts-R2"), RELEASE_R2),
            "Degraded",
            "R1",
            None,
            None,
            (("R2", "RolledBack"), ("R1", "Active")),
        ),
    ),
    TestCase(
        "spec.paused holds the canary; nothing moves",
        given=scenarios.canary_analysed,
        change=_respec(paused=True),
        now=110,
        want=Summary((), "Progressing", "R1", "R2", ("Canary", 0, 25, False, True), BOTH),
    ),
    TestCase(
        "a step without pauseSeconds waits for faiss.dev/promote",
        given=lambda: scenarios.canary_step0(
            _spec(rollout={"steps": [{"weight": 25}, {"weight": 50, "pauseSeconds": 0}]})
        ),
        measurements=(passing(R2, 0, at(52)),),
        now=55,
        want=Summary((), "Progressing", "R1", "R2", ("Canary", 0, 25, False, True), BOTH),
    ),
    TestCase(
        "faiss.dev/promote at a step without pauseSeconds opens that gate: on to the next step",
        given=lambda: _waiting_at_manual_gate(),
        change=_annotate("promote", "true"),
        now=56,
        want=Summary(
            (("RemoveAnnotation", "faiss.dev/promote"), ("Apply", "Deployment", "alerts-R2", 2)),
            "Progressing",
            "R1",
            "R2",
            ("Canary", 1, 50, False, False),
            BOTH,
        ),
    ),
    TestCase(
        "a first revision that reuses an artifact is analysed live before it becomes Active",
        given=lambda: _first_deploy_of_reused_artifact(),
        change=lambda c: c.ready_all(),
        now=45,
        want=Summary(
            (("Analyze", "R3", 0),),
            "Deploying",
            None,
            "R3",
            ("Deploy", 0, 100, False, False),
            (("R3", "Built"), ("R1", "Failed")),
        ),
    ),
    TestCase(
        "a first revision that reuses an artifact becomes Active once its live analysis passes",
        given=lambda: _first_deploy_of_reused_artifact(ready=True),
        measurements=(passing(R3, 0, at(46)),),
        now=47,
        want=Summary((), "Ready", "R3", None, None, (("R3", "Active"), ("R1", "Failed"))),
    ),
    TestCase(
        "a first revision that reuses an artifact and fails its live analysis fails; nothing serves",
        given=lambda: _first_deploy_of_reused_artifact(ready=True),
        measurements=(passing(R3, 0, at(46), recall=0.5),),
        now=47,
        want=Summary(
            (("Delete", "Deployment", "alerts-R3"),), "Failed", None, None, None, (("R3", "Failed"), ("R1", "Failed"))
        ),
    ),
    TestCase(
        "after the last step the candidate goes to all replicas before it is promoted",
        given=lambda: _at_last_step_analysed(),
        now=190,
        want=Summary(
            (("Apply", "Deployment", "alerts-R2", 4),), "Progressing", "R1", "R2", ("Canary", 1, 50, True, False), BOTH
        ),
    ),
    TestCase(
        "promotion: the candidate is Active, the old revision Retired but still scaled up for the delay",
        given=lambda: _at_last_step_analysed(promoting=True),
        change=lambda c: c.ready_all(),
        now=191,
        want=Summary((), "Ready", "R2", None, None, (("R2", "Active"), ("R1", "Retired"))),
    ),
    TestCase(
        "after scaleDownDelaySeconds the old Deployment goes",
        given=scenarios.promoted,
        now=191 + 30,
        want=Summary(
            (("Delete", "Deployment", "alerts-R1"),), "Ready", "R2", None, None, (("R2", "Active"), ("R1", "Retired"))
        ),
    ),
    # --- admin annotations --------------------------------------------------------------------
    TestCase(
        "faiss.dev/promote skips the remaining steps and analysis",
        given=scenarios.canary_step0,
        change=_annotate("promote", "true"),
        now=51,
        want=Summary(
            (("RemoveAnnotation", "faiss.dev/promote"), ("Apply", "Deployment", "alerts-R2", 4)),
            "Progressing",
            "R1",
            "R2",
            ("Canary", 0, 25, True, False),
            BOTH,
        ),
    ),
    TestCase(
        "faiss.dev/promote releases a canary paused on failure",
        given=lambda: _paused_on_failure(),
        change=_annotate("promote", "true"),
        now=60,
        want=Summary(
            (("RemoveAnnotation", "faiss.dev/promote"), ("Apply", "Deployment", "alerts-R2", 4)),
            "Progressing",
            "R1",
            "R2",
            ("Canary", 0, 25, True, False),
            BOTH,
        ),
    ),
    TestCase(
        "faiss.dev/promote with nothing to promote is refused and removed",
        given=scenarios.serving,
        change=_annotate("promote", "true"),
        now=25,
        want=Summary((("RemoveAnnotation", "faiss.dev/promote"),), "Ready", "R1", None, None, (("R1", "Active"),)),
    ),
    TestCase(
        "faiss.dev/abort takes the canary out",
        given=scenarios.canary_step0,
        change=_annotate("abort", "true"),
        now=51,
        want=Summary(
            (("RemoveAnnotation", "faiss.dev/abort"), ("Delete", "Deployment", "alerts-R2")),
            "Degraded",
            "R1",
            None,
            None,
            (("R2", "RolledBack"), ("R1", "Active")),
        ),
    ),
    TestCase(
        "faiss.dev/abort during the first deploy takes its Deployment down",
        given=lambda: _at_first_deploy(ready=2),
        change=_annotate("abort", "true"),
        now=15,
        want=Summary(
            (("RemoveAnnotation", "faiss.dev/abort"), ("Delete", "Deployment", "alerts-R1"), RELEASE_R1),
            "Failed",
            None,
            None,
            None,
            (("R1", "RolledBack"),),
        ),
    ),
    TestCase(
        "once the aborted first deploy is gone, nothing serves: the index has Failed",
        given=lambda: _first_deploy_aborted(),  # the simulated cluster deleted the Deployment at once
        now=16,
        want=Summary((), "Failed", None, None, None, (("R1", "RolledBack"),)),
    ),
    TestCase(
        "faiss.dev/abort during a build stops it; the Job goes",
        given=scenarios.candidate_building,
        change=_annotate("abort", "true"),
        now=31,
        want=Summary(
            (("RemoveAnnotation", "faiss.dev/abort"), ("Delete", "Job", "alerts-build-R2")),
            "Degraded",
            "R1",
            None,
            None,
            (("R2", "Failed"), ("R1", "Active")),
        ),
    ),
    TestCase(
        "faiss.dev/rollback=previous during a canary takes the canary out",
        given=scenarios.canary_step0,
        change=_annotate("rollback", "previous"),
        now=51,
        want=Summary(
            (("RemoveAnnotation", "faiss.dev/rollback"), ("Delete", "Deployment", "alerts-R2")),
            "Degraded",
            "R1",
            None,
            None,
            (("R2", "RolledBack"), ("R1", "Active")),
        ),
    ),
    TestCase(
        "faiss.dev/rollback=previous after a promotion brings the retired revision back on all replicas",
        given=scenarios.promoted_and_scaled_down,
        change=_annotate("rollback", "previous"),
        now=240,
        want=Summary(
            (("RemoveAnnotation", "faiss.dev/rollback"), ("Apply", "Deployment", "alerts-R1", 4)),
            "RollingBack",
            "R2",
            "R1",
            ("Rollback", 0, 100, False, False),
            (("R2", "Active"), ("R1", "Built")),
        ),
    ),
    TestCase(
        "faiss.dev/rollback naming a revision brings that one back",
        given=scenarios.promoted_and_scaled_down,
        change=_annotate("rollback", R1),
        now=240,
        want=Summary(
            (("RemoveAnnotation", "faiss.dev/rollback"), ("Apply", "Deployment", "alerts-R1", 4)),
            "RollingBack",
            "R2",
            "R1",
            ("Rollback", 0, 100, False, False),
            (("R2", "Active"), ("R1", "Built")),
        ),
    ),
    TestCase(
        "a rollback completes once the target serves all replicas: the left revision is RolledBack "
        "and leaves the Service at once (no scaleDownDelaySeconds after a rollback)",
        given=lambda: _rolling_back(),
        change=lambda c: c.ready_all(),
        now=250,
        want=Summary(
            (("Delete", "Deployment", "alerts-R2"),),
            "Degraded",
            "R1",
            None,
            None,
            (("R2", "RolledBack"), ("R1", "Active")),
        ),
    ),
    TestCase(
        "faiss.dev/rollback to a revision that is not in history is refused",
        given=scenarios.promoted_and_scaled_down,
        change=_annotate("rollback", "0123456789"),
        now=240,
        want=Summary(
            (("RemoveAnnotation", "faiss.dev/rollback"),),
            "Ready",
            "R2",
            None,
            None,
            (("R2", "Active"), ("R1", "Retired")),
        ),
    ),
    TestCase(
        "faiss.dev/rollback before anything serves is refused",
        given=scenarios.building,
        change=_annotate("rollback", "previous"),
        now=5,
        want=Summary(
            (("RemoveAnnotation", "faiss.dev/rollback"),), "Building", None, "R1", None, (("R1", "Building"),)
        ),
    ),
    TestCase(
        "faiss.dev/retry rebuilds a failed revision under a new Job name; the old Job goes",
        given=_failed_build,
        change=_annotate("retry", "true"),
        now=50,
        want=Summary(
            (
                ("RemoveAnnotation", "faiss.dev/retry"),
                ("Apply", "Job", "alerts-build-R2-1"),
                ("Delete", "Job", "alerts-build-R2"),
            ),
            "Building",
            "R1",
            "R2",
            None,
            (("R2", "Building"), ("R1", "Active")),
        ),
    ),
    TestCase(
        "faiss.dev/retry rolls a rolled-back revision out again without a build",
        given=lambda: _rolled_back_by_analysis(),
        change=_annotate("retry", "true"),
        now=70,
        want=Summary(
            (("RemoveAnnotation", "faiss.dev/retry"), ("Apply", "Deployment", "alerts-R2", 1)),
            "Progressing",
            "R1",
            "R2",
            CANARY_ROLLOUT,
            BOTH,
        ),
    ),
    TestCase(
        "a failed revision the spec still asks for is not rebuilt on its own",
        given=_failed_build,
        now=60,
        want=Summary((RELEASE_R2,), "Degraded", "R1", None, None, (("R2", "Failed"), ("R1", "Active"))),
    ),
    TestCase(
        "a rolled-back revision the spec still asks for is not rolled out again on its own",
        given=lambda: _rolled_back_by_analysis(),
        now=70,
        want=Summary((), "Degraded", "R1", None, None, (("R2", "RolledBack"), ("R1", "Active"))),
    ),
    # --- GitOps reverts and search-time changes -----------------------------------------------
    TestCase(
        "a spec reverted to a retained revision rolls to its artifact with no Job",
        given=scenarios.promoted_and_scaled_down,
        change=lambda c: setattr(c, "wire", spec()),
        now=240,
        want=Summary(
            (("Apply", "Deployment", "alerts-R1", 1),),
            "Progressing",
            "R2",
            "R1",
            CANARY_ROLLOUT,
            (("R2", "Active"), ("R1", "Canary")),
        ),
    ),
    TestCase(
        "a spec back to the serving revision during a canary ends the canary",
        given=scenarios.canary_step0,
        change=lambda c: setattr(c, "wire", spec()),
        now=51,
        want=Summary(
            (("Delete", "Deployment", "alerts-R2"),), "Ready", "R1", None, None, (("R2", "Superseded"), ("R1", "Active"))
        ),
    ),
    TestCase(
        "a change of search-time parameters only reuses the built artifact: no Job, straight to canary",
        given=scenarios.serving,
        change=_respec(config={"efSearch": 64}),
        now=30,
        want=Summary(
            (("Apply", "Deployment", "alerts-R3", 1),),
            "Progressing",
            "R1",
            "R3",
            CANARY_ROLLOUT,
            (("R3", "Canary"), ("R1", "Active")),
        ),
    ),
    TestCase(
        "lowering minRecall lets a revision that failed its gates roll out",
        given=lambda: _gate_failed(),
        change=_respec(evaluation={"minRecall": 0.5}),
        now=50,
        want=Summary(
            (("Apply", "Deployment", "alerts-R2", 1), RELEASE_R2),
            "Progressing",
            "R1",
            "R2",
            CANARY_ROLLOUT,
            BOTH,
        ),
    ),
]


def _at_first_deploy(*, ready: int) -> Cluster:
    cluster = scenarios.building()
    cluster.finish_job(R1, message=report())
    cluster.reconcile(at(10))
    cluster.ready(R1, ready)
    return cluster


def _at_last_step_analysed(*, promoting: bool = False) -> Cluster:
    cluster = scenarios.canary_analysed()
    cluster.reconcile(at(120))
    cluster.ready_all()
    cluster.reconcile(at(121))
    cluster.reconcile(at(125), (passing(R2, 1, at(122)),))
    if promoting:
        cluster.reconcile(at(190))
    return cluster


def _first_deploy_aborted() -> Cluster:
    cluster = _at_first_deploy(ready=2)
    cluster.annotations["faiss.dev/abort"] = "true"
    cluster.reconcile(at(15))
    return cluster


def _waiting_at_manual_gate() -> Cluster:
    wire = _spec(rollout={"steps": [{"weight": 25}, {"weight": 50, "pauseSeconds": 0}]})
    cluster = scenarios.canary_step0(wire)
    cluster.reconcile(at(55), (passing(R2, 0, at(52)),))
    assert cluster.status.rollout is not None and cluster.status.rollout.paused
    return cluster


def _first_deploy_of_reused_artifact(*, ready: bool = False) -> Cluster:
    cluster = scenarios.building()
    cluster.finish_job(R1, message=report(recall=0.5))
    cluster.reconcile(at(10))
    cluster.wire = with_config(cluster.wire, efSearch=64)
    cluster.reconcile(at(40))
    if ready:
        cluster.ready_all()
        cluster.reconcile(at(45))
    return cluster


def _paused_on_failure() -> Cluster:
    cluster = scenarios.canary_step0(_spec(rollout={"autoRollback": False, "onFailure": "Pause"}))
    cluster.reconcile(at(55), (passing(R2, 0, at(52), recall=0.5),))
    return cluster


def _rolled_back_by_analysis() -> Cluster:
    cluster = scenarios.canary_step0()
    cluster.reconcile(at(55), (passing(R2, 0, at(52), recall=0.5),))
    cluster.reconcile(at(60))
    return cluster


def _rolling_back() -> Cluster:
    cluster = scenarios.promoted_and_scaled_down()
    cluster.annotations["faiss.dev/rollback"] = "previous"
    cluster.reconcile(at(240))
    return cluster


def _gate_failed() -> Cluster:
    cluster = scenarios.candidate_building()
    cluster.finish_job(R2, message=report(recall=0.6))
    cluster.reconcile(at(40))
    assert cluster.status.revision(R2).state == "Failed"  # type: ignore[union-attr]
    return cluster


@pytest.mark.parametrize("case", [c for c in CASES if c.want is not None], ids=lambda c: c.reason)
def test_transition(case: TestCase) -> None:
    cluster = case.given()
    case.change(cluster)
    plan = cluster.reconcile(at(case.now), case.measurements)
    assert labelled(summarize(plan)) == case.want


def test_a_spec_change_during_a_build_supersedes_the_building_revision() -> None:
    cluster = scenarios.candidate_building()
    cluster.wire = with_config(cluster.wire, efConstruction=300)
    newest = revision_of(cluster.wire)
    plan = cluster.reconcile(at(35))
    assert labelled(summarize(plan)) == Summary(
        (("Apply", "Job", f"alerts-build-{newest}"), ("Delete", "Job", "alerts-build-R2")),
        "Building",
        "R1",
        newest,
        None,
        ((newest, "Building"), ("R2", "Superseded"), ("R1", "Active")),
    )
    superseded = plan.status.revision(R2)
    assert superseded is not None and superseded.reason == "Superseded"
    # The superseded revision never built: returning to it builds it again under a new Job.
    cluster.wire = with_config(spec(), m=32)
    plan = cluster.reconcile(at(36))
    assert labelled(summarize(plan)).actions == (
        ("Apply", "Job", "alerts-build-R2-1"),
        ("Delete", "Job", f"alerts-build-{newest}"),
    )


# --- a rollback whose target never becomes ready ---

ROLLBACK_DEADLINE = 240 + 300  # _rolling_back starts at 240; the test spec sets progressDeadlineSeconds 300


def _rollback_stalled() -> Cluster:
    cluster = _rolling_back()
    cluster.reconcile(at(ROLLBACK_DEADLINE))
    return cluster


def test_a_rollback_waiting_for_its_target_wakes_at_the_progress_deadline() -> None:
    cluster = _rolling_back()
    plan = cluster.reconcile(at(300))
    assert plan.requeue_after == ROLLBACK_DEADLINE - 300
    assert labelled(summarize(plan)).rollout == ("Rollback", 0, 100, False, False)


def test_a_rollback_past_its_deadline_stalls_and_leaves_what_serves_untouched() -> None:
    cluster = _rolling_back()
    cluster.ready(R1, 1)
    plan = cluster.reconcile(at(ROLLBACK_DEADLINE))
    assert labelled(summarize(plan)) == Summary(
        (),
        "RollingBack",
        "R2",
        "R1",
        ("Rollback", 0, 100, False, True),
        (("R2", "Active"), ("R1", "Built")),
    )
    assert plan.requeue_after is None
    conditions = {c.type: c for c in plan.status.conditions}
    for type_ in ("Stalled", "Degraded"):
        assert conditions[type_].status == "True"
        assert conditions[type_].reason == "RollbackStalled"
        assert _label(conditions[type_].message) == (
            "ProgressDeadlineExceeded: rollback to R1 has 1/4 replicas ready after 300s; "
            "annotate faiss.dev/abort=true to cancel the rollback or faiss.dev/rollback to pick another revision"
        )
    assert conditions["Ready"].status == "True"
    assert [e.reason for e in plan.events if e.type == "Warning"] == ["ProgressDeadlineExceeded"]


def test_a_stalled_rollback_completes_if_its_target_becomes_ready_after_all() -> None:
    cluster = _rollback_stalled()
    cluster.ready_all()
    plan = cluster.reconcile(at(ROLLBACK_DEADLINE + 10))
    summary = labelled(summarize(plan))
    assert (summary.phase, summary.current, summary.candidate, summary.rollout, summary.revisions) == (
        "Degraded",  # R1 serves; the spec still asks for R2, rolled back: Stalled
        "R1",
        None,
        None,
        (("R2", "RolledBack"), ("R1", "Active")),
    )


@pytest.mark.parametrize("given", [_rolling_back, _rollback_stalled], ids=["in time", "stalled"])
def test_faiss_dev_abort_cancels_a_rollback_and_the_serving_revision_stays(given: Callable[[], Cluster]) -> None:
    cluster = given()
    _annotate("abort", "true")(cluster)
    plan = cluster.reconcile(at(ROLLBACK_DEADLINE + 1))
    assert labelled(summarize(plan)) == Summary(
        (
            ("RemoveAnnotation", "faiss.dev/abort"),
            ("Delete", "Deployment", "alerts-R1"),
        ),
        "Ready",
        "R2",
        None,
        None,
        (("R2", "Active"), ("R1", "Retired")),
    )
    conditions = {c.type: c for c in plan.status.conditions}
    assert (conditions["Stalled"].status, conditions["Degraded"].status) == ("False", "False")
    retired = plan.status.revision(R1)
    assert retired is not None and retired.reason == "Aborted"


# --- a complete build Job whose pod is not observed (yet) ---


def _complete_without_pod() -> Cluster:
    cluster = scenarios.candidate_building()
    cluster.finish_job(R2, completed_at=at(38), pod_seen=False)
    return cluster


def test_a_complete_job_whose_pod_is_not_seen_yet_is_still_finishing() -> None:
    cluster = _complete_without_pod()
    plan = cluster.reconcile(at(40))
    assert labelled(summarize(plan)) == Summary(
        (), "Building", "R1", "R2", None, (("R2", "Building"), ("R1", "Active"))
    )
    assert plan.requeue_after == 5
    cluster.show_build_pod(R2, report())
    plan = cluster.reconcile(at(45))
    assert labelled(summarize(plan)).revisions == (("R2", "Canary"), ("R1", "Active"))


def test_a_complete_job_whose_pod_stays_unseen_fails_the_revision_saying_so() -> None:
    cluster = _complete_without_pod()
    plan = cluster.reconcile(at(97))
    assert plan.requeue_after == 1  # the grace ends 60 s after completion, at 98
    plan = cluster.reconcile(at(98))
    assert labelled(summarize(plan)) == Summary(
        (), "Degraded", "R1", None, None, (("R2", "Failed"), ("R1", "Active"))
    )
    failed = plan.status.revision(R2)
    assert failed is not None and failed.reason == "BuildPodNotFound"
    assert _label(failed.message or "") == (
        "Job alerts-build-R2 completed but its pod was not found within 60s, so its report cannot be read; "
        "annotate faiss.dev/retry=true to build again"
    )
