"""Each transition function of the rollout by itself: mode in, event in -> mode out, effects out.

One table of whole expected results (after crossplane's function SDK): the context is the test
spec's (4 replicas, steps 25% and 50% with pauseSeconds 60, progressDeadlineSeconds 300,
autoRollback) unless a case changes it; every step starts at T (100 s) and the pass runs at NOW.
The stories of tests/controller/decision/test_transitions.py run the same functions through
`decide`; here each move is pinned down alone, and each result is checked against
MODE_TRANSITIONS and the wire form.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import pytest
from faiss_operator.api import resource as api_resource
from faiss_operator.api import status as api_status
from faiss_operator.controller.decision import modes, state, transitions
from faiss_operator.controller.decision.transitions import (
    OBSERVED,
    AbortRequested,
    Analyze,
    End,
    PromoteRequested,
    Promote,
    RecordLiveMetrics,
    Retarget,
    RollbackRequested,
    Transition,
    Warn,
    WakeAt,
)

from tests.controller.builders import SETTINGS, at, passing, spec

T = at(100)  # when the step under way started
NOW = at(130)
DEADLINE = at(400)  # T + progressDeadlineSeconds
READY_AT = at(110)
CANDIDATE = "R2"


def _spec(**rollout: Any) -> Any:
    wire = spec()
    extra = {k: v for k, v in rollout.items() if k in ("paused", "serving")}
    wire.update(extra)
    wire["rollout"] = {**wire["rollout"], **{k: v for k, v in rollout.items() if k not in extra}}
    return api_resource.parse_spec(wire)


def context(*, now: datetime.datetime = NOW, ready: int = 4, **changes: Any) -> transitions.Context:
    base = transitions.Context(
        candidate=CANDIDATE,
        now=now,
        spec=_spec(),
        ready=ready,
        has_stable=True,
        unmeasured=False,
        analysis_interval_seconds=SETTINGS.analysis_interval_seconds,
    )
    return dataclasses.replace(base, **changes)


START = modes.Progress(T)
WHOLE = modes.Progress(T, ready_at=READY_AT)
STEP0 = modes.Stepping(0, 25, START)
STEP0_WHOLE = modes.Stepping(0, 25, WHOLE)
STEP0_PASSED = modes.Stepping(0, 25, WHOLE, modes.Analysis(passed=True, last_at=at(112)))
DEPLOYING = modes.Deploying(START)
ROLLING_BACK = modes.RollingBack(START)
FAILURE = state.PAUSE_FAILURE


@dataclasses.dataclass(frozen=True)
class TestCase:
    __test__ = False

    reason: str
    mode: modes.Mode
    context: transitions.Context
    want: Transition
    event: transitions.Event = OBSERVED


CASES = [
    # --- Deploying ----------------------------------------------------------------------------
    TestCase(
        "a first deploy waits for all its replicas, to be woken at the progress deadline",
        DEPLOYING,
        context(ready=3, has_stable=False),
        Transition(DEPLOYING, (WakeAt(DEADLINE),)),
    ),
    TestCase(
        "a first deploy whose replicas are all ready takes over",
        DEPLOYING,
        context(has_stable=False),
        Transition(None, (Promote(),)),
    ),
    TestCase(
        "a first deploy with no ready replica at its deadline fails",
        DEPLOYING,
        context(now=DEADLINE, ready=0, has_stable=False),
        Transition(None, (End("Failed", "ProgressDeadlineExceeded", "0/4 replicas ready after 300s"),)),
    ),
    TestCase(
        "a first deploy with some ready replicas at its deadline takes over, saying it is degraded",
        DEPLOYING,
        context(now=DEADLINE, ready=1, has_stable=False),
        Transition(
            None,
            (Warn("PromotedDegraded", "revision R2 serves with 1/4 replicas ready after 300s"), Promote()),
        ),
    ),
    TestCase(
        "a first deploy that still needs its live analysis at its deadline pauses, serving what it has",
        DEPLOYING,
        context(now=DEADLINE, ready=1, has_stable=False, unmeasured=True),
        Transition(
            modes.Paused(FAILURE, "1/4 replicas ready after 300s", DEPLOYING),
            (Warn("ProgressDeadlineExceeded", "1/4 replicas ready after 300s"),),
        ),
    ),
    TestCase(
        "a whole first deploy of a reused artifact asks for its live analysis",
        DEPLOYING,
        context(has_stable=False, unmeasured=True),
        Transition(
            modes.Deploying(modes.Progress(T, ready_at=NOW)),
            (Analyze(0), WakeAt(at(140)), WakeAt(DEADLINE)),
        ),
    ),
    TestCase(
        "a first deploy of a reused artifact whose analysis passed records the live metrics and takes over",
        modes.Deploying(WHOLE),
        context(has_stable=False, unmeasured=True, measurements=(passing(CANDIDATE, 0, at(120)),)),
        Transition(None, (RecordLiveMetrics(passing(CANDIDATE, 0, at(120))), Promote())),
    ),
    TestCase(
        "faiss.dev/promote during a first deploy is ignored",
        DEPLOYING,
        context(has_stable=False),
        Transition(DEPLOYING, (Warn("AnnotationIgnored", "faiss.dev/promote: no canary in progress"),)),
        event=PromoteRequested(),
    ),
    # --- Stepping -----------------------------------------------------------------------------
    TestCase(
        "spec.paused pauses a step where it is",
        STEP0,
        context(spec=_spec(paused=True)),
        Transition(modes.Paused(state.PAUSE_SPEC, None, STEP0)),
    ),
    TestCase(
        "a step waits for its ceil(4*25/100) = 1 replica",
        STEP0,
        context(ready=0),
        Transition(STEP0, (WakeAt(DEADLINE),)),
    ),
    TestCase(
        "a step without its replicas at the deadline is rolled back, saying why the pods are missing",
        STEP0,
        context(now=DEADLINE, ready=0, why_missing="exceeded quota"),
        Transition(
            None,
            (
                End(
                    "RolledBack",
                    "ProgressDeadlineExceeded",
                    "step 1: 0/1 candidate replicas ready (exceeded quota)",
                    leave_service=True,
                ),
            ),
        ),
    ),
    TestCase(
        "a whole step notes when, and asks for its analysis",
        STEP0,
        context(ready=1),
        Transition(modes.Stepping(0, 25, modes.Progress(T, ready_at=NOW)), (Analyze(0), WakeAt(at(140)), WakeAt(DEADLINE))),
    ),
    TestCase(
        "a passing analysis records when, then the step waits out its pause",
        STEP0_WHOLE,
        context(ready=1, measurements=(passing(CANDIDATE, 0, at(112)),)),
        Transition(STEP0_PASSED, (RecordLiveMetrics(passing(CANDIDATE, 0, at(112))), WakeAt(at(170)))),
    ),
    TestCase(
        "after its pause the next step starts and waits for its ceil(4*50/100) = 2 replicas",
        STEP0_PASSED,
        context(now=at(170), ready=1),
        Transition(modes.Stepping(1, 50, modes.Progress(at(170))), (WakeAt(at(470)),)),
    ),
    TestCase(
        "an analysis failing past failureLimit rolls the canary back",
        STEP0_WHOLE,
        context(ready=1, measurements=(passing(CANDIDATE, 0, at(112), recall=0.5),)),
        Transition(
            None,
            (End("RolledBack", "AnalysisFailed", "step 1: live recall 0.500 < 0.9", leave_service=True),),
        ),
    ),
    TestCase(
        "within failureLimit a failing analysis is said and asked again",
        STEP0_WHOLE,
        context(
            ready=1,
            spec=_spec(analysis={"failureLimit": 1}),
            measurements=(passing(CANDIDATE, 0, at(112), recall=0.5),),
        ),
        Transition(
            modes.Stepping(0, 25, WHOLE, modes.Analysis(failures=1, last_at=at(112))),
            (
                Warn("AnalysisFailed", "step 1: live recall 0.500 < 0.9 (failure 1)"),
                Analyze(0),
                WakeAt(at(140)),
                WakeAt(DEADLINE),
            ),
        ),
    ),
    TestCase(
        "without autoRollback, onFailure Pause holds a failed step where it is",
        STEP0_WHOLE,
        context(
            ready=1,
            spec=_spec(autoRollback=False, onFailure="Pause"),
            measurements=(passing(CANDIDATE, 0, at(112), recall=0.5),),
        ),
        Transition(
            modes.Paused(
                FAILURE,
                "AnalysisFailed: step 1: live recall 0.500 < 0.9",
                modes.Stepping(0, 25, WHOLE, modes.Analysis(failures=1, last_at=at(112))),
            )
        ),
    ),
    TestCase(
        "an analysis still inconclusive at the deadline fails the step",
        STEP0_WHOLE,
        context(now=DEADLINE, ready=1),
        Transition(
            None,
            (
                Analyze(0),
                WakeAt(at(410)),
                End("RolledBack", "ProgressDeadlineExceeded", "step 1: analysis inconclusive", leave_service=True),
            ),
        ),
    ),
    TestCase(
        "a passed step without pauseSeconds awaits faiss.dev/promote",
        STEP0_PASSED,
        context(ready=1, spec=_spec(steps=[{"weight": 25}, {"weight": 50, "pauseSeconds": 0}])),
        Transition(modes.AwaitingPromotion(STEP0_PASSED)),
    ),
    TestCase(
        "faiss.dev/promote during a step promotes fully, its clock started again",
        STEP0_WHOLE,
        context(ready=1),
        Transition(modes.Promoting(modes.Stepping(0, 25, modes.Progress(NOW, ready_at=READY_AT)))),
        event=PromoteRequested(),
    ),
    # --- AwaitingPromotion --------------------------------------------------------------------
    TestCase(
        "a manual gate stays closed, spec.paused or not",
        modes.AwaitingPromotion(STEP0_PASSED),
        context(ready=1, spec=_spec(paused=True)),
        Transition(modes.AwaitingPromotion(STEP0_PASSED)),
    ),
    TestCase(
        "faiss.dev/promote at a manual gate opens the next step",
        modes.AwaitingPromotion(STEP0_PASSED),
        context(ready=1),
        Transition(modes.Stepping(1, 50, modes.Progress(NOW))),
        event=PromoteRequested(),
    ),
    TestCase(
        "faiss.dev/promote at a manual gate on the last step promotes",
        modes.AwaitingPromotion(modes.Stepping(1, 50, WHOLE, modes.Analysis(passed=True))),
        context(ready=2),
        Transition(modes.Promoting(modes.Stepping(1, 50, modes.Progress(NOW, ready_at=READY_AT), modes.Analysis(passed=True)))),
        event=PromoteRequested(),
    ),
    # --- Promoting ----------------------------------------------------------------------------
    TestCase(
        "promoting waits for all replicas",
        modes.Promoting(STEP0_PASSED),
        context(ready=3),
        Transition(
            modes.Promoting(dataclasses.replace(STEP0_PASSED, progress=dataclasses.replace(WHOLE, unready_since=NOW))),
            (WakeAt(at(430)),),
        ),
    ),
    TestCase(
        "promoting with all replicas ready takes over",
        modes.Promoting(STEP0_PASSED),
        context(ready=4),
        Transition(None, (Promote(),)),
    ),
    TestCase(
        "promoting past the deadline with onFailure Abort fails the candidate",
        modes.Promoting(STEP0),
        context(now=DEADLINE, ready=3, spec=_spec(autoRollback=False, onFailure="Abort")),
        Transition(None, (End("Failed", "ProgressDeadlineExceeded", "3/4 replicas ready while promoting"),)),
    ),
    # --- RollingBack --------------------------------------------------------------------------
    TestCase(
        "a rollback whose target serves all replicas completes",
        ROLLING_BACK,
        context(ready=4),
        Transition(None, (Promote("RolledBack", "RollbackRequested", "rolled back by faiss.dev/rollback"),)),
    ),
    TestCase(
        "a rollback past its deadline stalls where it is",
        ROLLING_BACK,
        context(now=DEADLINE, ready=1),
        Transition(
            modes.Paused(
                FAILURE, "ProgressDeadlineExceeded: rollback to R2 has 1/4 replicas ready after 300s", ROLLING_BACK
            ),
            (Warn("ProgressDeadlineExceeded", "ProgressDeadlineExceeded: rollback to R2 has 1/4 replicas ready after 300s"),),
        ),
    ),
    # --- Paused -------------------------------------------------------------------------------
    TestCase(
        "a spec pause lifted goes on with the step, its clock started again",
        modes.Paused(state.PAUSE_SPEC, None, STEP0),
        context(ready=0),
        Transition(modes.Stepping(0, 25, modes.Progress(NOW)), (WakeAt(at(430)),)),
    ),
    TestCase(
        "a failure pause stays without an admin, even with spec.paused lifted",
        modes.Paused(FAILURE, "AnalysisFailed: x", STEP0_WHOLE),
        context(ready=1),
        Transition(modes.Paused(FAILURE, "AnalysisFailed: x", STEP0_WHOLE)),
    ),
    TestCase(
        "faiss.dev/promote ends a failure pause of a step by promoting fully",
        modes.Paused(FAILURE, "AnalysisFailed: x", STEP0_WHOLE),
        context(ready=1),
        Transition(modes.Promoting(modes.Stepping(0, 25, modes.Progress(NOW, ready_at=READY_AT)))),
        event=PromoteRequested(),
    ),
    TestCase(
        "a paused first deploy whose replicas all became ready goes on and takes over",
        modes.Paused(FAILURE, "1/4 replicas ready after 300s", DEPLOYING),
        context(ready=4, has_stable=False),
        Transition(None, (Promote(),)),
    ),
    TestCase(
        "a stalled rollback whose target became ready completes",
        modes.Paused(FAILURE, "stalled", ROLLING_BACK),
        context(ready=4),
        Transition(None, (Promote("RolledBack", "RollbackRequested", "rolled back by faiss.dev/rollback"),)),
    ),
    # --- abort --------------------------------------------------------------------------------
    TestCase(
        "faiss.dev/abort rolls a canary back",
        STEP0_WHOLE,
        context(ready=1),
        Transition(None, (End("RolledBack", "Aborted", "aborted by faiss.dev/abort"),)),
        event=AbortRequested(),
    ),
    TestCase(
        "faiss.dev/abort cancels a rollback: its target goes back to history",
        modes.Paused(FAILURE, "stalled", ROLLING_BACK),
        context(ready=1),
        Transition(None, (End("Retired", "Aborted", "rollback aborted by faiss.dev/abort"),)),
        event=AbortRequested(),
    ),
    # --- rollback -----------------------------------------------------------------------------
    TestCase(
        "faiss.dev/rollback to the serving revision during a canary takes the canary away at once",
        STEP0_WHOLE,
        context(ready=1),
        Transition(
            None, (End("RolledBack", "RollbackRequested", "rolled back by faiss.dev/rollback", leave_service=True),)
        ),
        event=RollbackRequested(),
    ),
    TestCase(
        "faiss.dev/rollback naming an older revision during a canary rolls the canary back and that one in",
        STEP0_WHOLE,
        context(ready=1),
        Transition(
            modes.RollingBack(modes.Progress(NOW)),
            (End("RolledBack", "RollbackRequested", "replaced by the rollback to R0"), Retarget(state.Revision("R0"))),
        ),
        event=RollbackRequested(state.Revision("R0")),
    ),
    TestCase(
        "faiss.dev/rollback during a stalled rollback sends its target back to history and rolls the new one in",
        modes.Paused(FAILURE, "stalled", ROLLING_BACK),
        context(ready=1),
        Transition(
            modes.RollingBack(modes.Progress(NOW)),
            (End("Retired", "RollbackRequested", "replaced by the rollback to R0"), Retarget(state.Revision("R0"))),
        ),
        event=RollbackRequested(state.Revision("R0")),
    ),
]


def _changes(before: modes.Mode | None, result: Transition) -> list[tuple[modes.Mode | None, modes.Mode | None]]:
    """The changes of mode carrying `result` out makes: an ending effect leaves no rollout first."""
    if any(isinstance(effect, (End, Promote)) for effect in result.effects):
        return [(before, None), (None, result.mode)]
    return [(before, result.mode)]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.reason)
def test_transition_function(case: TestCase) -> None:
    result = transitions.transition(case.mode, case.event, case.context)
    assert result == case.want
    for before, after in _changes(case.mode, result):
        modes.check(before, after)  # every change is one MODE_TRANSITIONS lists
    assert modes.read(modes.to_wire(result.mode)) == result.mode  # and the mode survives the flat wire form


def test_abort_of_a_candidate_still_building_fails_it() -> None:
    assert transitions.abort(None, AbortRequested(building=True)) == Transition(
        None, (End("Failed", "Aborted", "aborted by faiss.dev/abort"),)
    )


# --- the table and the wire form ----------------------------------------------------------------


def test_every_mode_has_a_row_and_each_function_one_mode() -> None:
    kinds = {modes.Deploying, modes.Stepping, modes.AwaitingPromotion, modes.Promoting, modes.RollingBack, modes.Paused}
    assert set(modes.MODE_TRANSITIONS) == kinds | {None}


def test_an_illegal_mode_change_raises_and_leaves_the_draft_as_it_was() -> None:
    draft = state.Draft(revisions=[], current=None, candidate="R2", mode=DEPLOYING, scale_downs=[])
    with pytest.raises(state.IllegalTransition, match="rollout: Deploying -> Stepping is not in modes.MODE_TRANSITIONS"):
        draft.enter(STEP0)
    assert draft.mode == DEPLOYING
    draft.enter(modes.Paused(FAILURE, "x", DEPLOYING))  # listed: made
    assert isinstance(draft.mode, modes.Paused)


WIRE = dict(step_started_at=T, step_ready_at=READY_AT)


@pytest.mark.parametrize(
    "wire,mode",
    [
        (api_status.RolloutStatus(mode="Deploy", weight=100, **WIRE), modes.Deploying(WHOLE)),
        (api_status.RolloutStatus(mode="Rollback", weight=100, **WIRE), modes.RollingBack(WHOLE)),
        (api_status.RolloutStatus(mode="Canary", step=0, weight=25, **WIRE), STEP0_WHOLE),
        (
            api_status.RolloutStatus(mode="Canary", step=0, weight=25, paused=True, pause_reason="AwaitingPromotion", **WIRE),
            modes.AwaitingPromotion(STEP0_WHOLE),
        ),
        (api_status.RolloutStatus(mode="Canary", step=0, weight=25, promoting=True, **WIRE), modes.Promoting(STEP0_WHOLE)),
        (
            api_status.RolloutStatus(
                mode="Canary", step=0, weight=25, promoting=True, paused=True, pause_reason="SpecPaused", **WIRE
            ),
            modes.Paused(state.PAUSE_SPEC, None, modes.Promoting(STEP0_WHOLE)),
        ),
        (
            api_status.RolloutStatus(
                mode="Rollback", weight=100, paused=True, pause_reason="Failure", pause_message="stalled", **WIRE
            ),
            modes.Paused(FAILURE, "stalled", modes.RollingBack(WHOLE)),
        ),
        (
            api_status.RolloutStatus(
                mode="Canary",
                step=1,
                weight=50,
                analysis_passed=True,
                analysis_failures=2,
                last_analysis_at=at(120),
                unready_since=at(125),
                **WIRE,
            ),
            modes.Stepping(1, 50, modes.Progress(T, READY_AT, at(125)), modes.Analysis(True, 2, at(120))),
        ),
    ],
    ids=[
        "deploy",
        "rollback",
        "canary",
        "awaiting-promotion",
        "promoting",
        "spec-paused-promoting",
        "rollback-stalled",
        "clock-and-analysis",
    ],
)
def test_the_flat_wire_form_reads_as_one_mode_and_is_written_back_the_same(
    wire: api_status.RolloutStatus, mode: modes.Mode
) -> None:
    assert modes.read(wire) == mode
    assert modes.to_wire(mode) == wire
