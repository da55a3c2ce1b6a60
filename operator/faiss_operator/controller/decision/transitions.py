"""The rollout's moves, one function per mode: (mode, event, context) -> Transition(mode, effects).

An event is what happened: a pass observed the world (`Observed`), or an admin asked
(`PromoteRequested`, `AbortRequested`; admin.py checks the annotation's value first). The
context is what the pass knows of the candidate (its ready replicas, the spec, the fresh
measurements, the time). The result is the next mode and the effects on the rest of the decision
(end or promote the candidate, a Warning, an analysis to start, a time to look again), which
rollout.py carries out on the draft. Nothing here reads or writes the draft: each function is
tested by itself with whole expected results (tests/controller/decision/test_mode_transitions.py).
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable
from typing import Literal, TypeAlias

from faiss_operator.api import spec as api_spec
from faiss_operator.api import status as api_status
from faiss_operator.controller.decision import analysis, canary, modes, state


# --- events -------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Observed:
    """A pass looked at the world (the context says what it saw)."""


@dataclasses.dataclass(frozen=True)
class PromoteRequested:
    """faiss.dev/promote=true."""


@dataclasses.dataclass(frozen=True)
class AbortRequested:
    """faiss.dev/abort=true; `building` when the candidate is still being built."""

    building: bool = False


@dataclasses.dataclass(frozen=True)
class RollbackRequested:
    """faiss.dev/rollback naming `target`, a revision that served (admin.py checked it); None when
    it names the revision that serves (or `previous`) during a canary: only the canary goes."""

    target: state.Revision | None = None


Event: TypeAlias = Observed | PromoteRequested | AbortRequested | RollbackRequested
OBSERVED = Observed()


# --- effects ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Promote:
    """The candidate takes all traffic; the revision it replaces becomes `replaced`."""

    replaced: api_status.RevisionState = "Retired"
    reason: str | None = None
    message: str | None = None


@dataclasses.dataclass(frozen=True)
class End:
    """The candidate leaves the rollout as `state`; `leave_service`: every revision in its
    scale-down delay leaves the Service too (a rollback leaves only the one it returns to)."""

    state: api_status.RevisionState
    reason: str
    message: str
    leave_service: bool = False


@dataclasses.dataclass(frozen=True)
class Warn:
    reason: str
    message: str


@dataclasses.dataclass(frozen=True)
class WakeAt:
    at: datetime.datetime


@dataclasses.dataclass(frozen=True)
class Analyze:
    """Measure the candidate live at `step`."""

    step: int


@dataclasses.dataclass(frozen=True)
class RecordLiveMetrics:
    """A revision without build-time recall (a reused artifact) takes its live one."""

    measurement: analysis.Measurement


@dataclasses.dataclass(frozen=True)
class Retarget:
    """A rollback's target (a revision that served) becomes the candidate, back to Built."""

    revision: state.Revision


Effect: TypeAlias = Promote | End | Warn | WakeAt | Analyze | RecordLiveMetrics | Retarget


@dataclasses.dataclass(frozen=True)
class Transition:
    mode: modes.Mode | None
    effects: tuple[Effect, ...] = ()


@dataclasses.dataclass(frozen=True)
class Context:
    """What one pass knows of the candidate's rollout."""

    candidate: str
    now: datetime.datetime
    spec: api_spec.FaissIndexSpec
    ready: int  # the candidate's ready replicas
    has_stable: bool  # a revision serves beside the candidate
    unmeasured: bool  # the candidate has no build-time recall (it reuses an artifact)
    analysis_interval_seconds: float  # how soon to look again after asking for an analysis
    measurements: tuple[analysis.Measurement, ...] = ()  # of the candidate
    why_missing: str | None = None  # why candidate pods are missing, in words, when known

    @property
    def total(self) -> int:
        return self.spec.serving.replicas

    def after(self, seconds: float) -> datetime.datetime:
        return self.now + datetime.timedelta(seconds=seconds)


def transition(mode: modes.Mode, event: Event, context: Context) -> Transition:
    """The one entry: what `event` does to a rollout in `mode`."""
    if isinstance(event, AbortRequested):
        return abort(mode, event)
    if isinstance(event, RollbackRequested):
        return rollback(mode, event, context.now)
    return _BY_MODE[type(mode)](mode, event, context)


def abort(mode: modes.Mode | None, event: AbortRequested) -> Transition:
    """Cancelling a rollback leaves the revision that serves as it is; the target goes back to
    history (it served before), where a later faiss.dev/rollback can pick it again. Any other
    candidate is rolled back (Failed while it builds)."""
    if modes.is_rolling_back(mode):
        return Transition(None, (End("Retired", state.REASON_ABORTED, "rollback aborted by faiss.dev/abort"),))
    ending: api_status.RevisionState = "Failed" if event.building else "RolledBack"
    return Transition(None, (End(ending, state.REASON_ABORTED, "aborted by faiss.dev/abort"),))


def rollback(mode: modes.Mode | None, event: RollbackRequested, now: datetime.datetime) -> Transition:
    """The candidate in progress goes: rolled back, or, when it is itself a rollback's target
    (it served before), back to history; then the named target rolls back in, to all replicas."""
    if event.target is None:
        end = End("RolledBack", state.REASON_ROLLBACK_REQUESTED, "rolled back by faiss.dev/rollback", leave_service=True)
        return Transition(None, (end,))
    leaving: api_status.RevisionState = "Retired" if modes.is_rolling_back(mode) else "RolledBack"
    end = End(leaving, state.REASON_ROLLBACK_REQUESTED, f"replaced by the rollback to {event.target}")
    return Transition(modes.RollingBack(modes.Progress(now)), (end, Retarget(event.target)))


# --- one function per mode ----------------------------------------------------------------------


def deploying(mode: modes.Mode, event: Event, context: Context) -> Transition:
    """All replicas at once (nothing serves yet). A revision that reuses an artifact has no
    build-time recall, so its gates are checked live before it becomes Active.

    At the progress deadline, a revision with no ready replica fails; one with some keeps them:
    it becomes Active if it needs no live analysis (Degraded shows the missing replicas), and
    otherwise waits paused for an admin, serving what it has."""
    assert isinstance(mode, modes.Deploying)
    if isinstance(event, PromoteRequested):
        return _no_canary(mode)
    progress, deadline = _clock(mode.progress, context, wanted=context.total)
    mode = dataclasses.replace(mode, progress=progress)
    past = context.now >= deadline
    if context.ready < context.total:
        if not past:
            return Transition(mode, (WakeAt(deadline),))
        seconds = context.spec.rollout.progress_deadline_seconds
        message = f"{context.ready}/{context.total} replicas ready after {seconds}s"
        if context.ready == 0:
            return Transition(None, (End("Failed", state.REASON_PROGRESS_DEADLINE, message),))
        if context.unmeasured and not mode.analysis.passed:
            paused_mode = modes.Paused(state.PAUSE_FAILURE, message, mode)
            return Transition(paused_mode, (Warn(state.REASON_PROGRESS_DEADLINE, message),))
        degraded = Warn(state.REASON_PROMOTED_DEGRADED, f"revision {context.candidate} serves with {message}")
        return Transition(None, (degraded, Promote()))
    if progress.ready_at is None:
        mode = dataclasses.replace(mode, progress=dataclasses.replace(progress, ready_at=context.now))
    if not context.unmeasured or mode.analysis.passed:
        return Transition(None, (Promote(),))
    judged = _judge(mode.analysis, mode.progress, 0, context)
    mode = dataclasses.replace(mode, analysis=judged.analysis)
    if judged.verdict == "passed":
        return Transition(None, judged.effects + (Promote(),))
    if judged.verdict == "failed":
        return Transition(None, judged.effects + (End("Failed", state.REASON_ANALYSIS_FAILED, judged.message),))
    if past:
        end = End("Failed", state.REASON_PROGRESS_DEADLINE, "live analysis inconclusive")
        return Transition(None, judged.effects + (end,))
    return Transition(mode, judged.effects + (WakeAt(deadline),))


def stepping(mode: modes.Mode, event: Event, context: Context) -> Transition:
    """A canary step: its replicas, then its analysis, then its pause (or faiss.dev/promote at a
    step without pauseSeconds), then the next step or, after the last, Promoting."""
    assert isinstance(mode, modes.Stepping)
    if isinstance(event, PromoteRequested):
        return Transition(_promoting(mode, context.now))
    if context.spec.paused:
        return Transition(modes.Paused(state.PAUSE_SPEC, None, mode))
    step = canary.step_at(context.spec.rollout, mode.step)
    wanted = canary.step_replicas(context.spec.rollout, total=context.total, position=mode.step)
    progress, deadline = _clock(mode.progress, context, wanted=wanted)
    mode = dataclasses.replace(mode, progress=progress)
    past = context.now >= deadline
    if context.ready < wanted:
        if not past:
            return Transition(mode, (WakeAt(deadline),))
        message = f"step {mode.step + 1}: {context.ready}/{wanted} candidate replicas ready"
        message += f" ({context.why_missing})" if context.why_missing else ""
        return fail(mode, context, state.REASON_PROGRESS_DEADLINE, message)
    if progress.ready_at is None:
        mode = dataclasses.replace(mode, progress=dataclasses.replace(progress, ready_at=context.now))
    effects: tuple[Effect, ...] = ()
    if not mode.analysis.passed:
        judged = _judge(mode.analysis, mode.progress, mode.step, context)
        mode = dataclasses.replace(mode, analysis=judged.analysis)
        if judged.verdict == "failed":
            return _before(judged.effects, fail(mode, context, state.REASON_ANALYSIS_FAILED, judged.message))
        if judged.verdict == "pending":
            if not past:
                return Transition(mode, judged.effects + (WakeAt(deadline),))
            inconclusive = f"step {mode.step + 1}: analysis inconclusive"
            return _before(judged.effects, fail(mode, context, state.REASON_PROGRESS_DEADLINE, inconclusive))
        effects = judged.effects
    ready_at = mode.progress.ready_at or context.now
    if step.pause_seconds is None:
        return Transition(modes.AwaitingPromotion(mode), effects)
    resume = ready_at + datetime.timedelta(seconds=step.pause_seconds)
    if context.now < resume:
        return Transition(mode, effects + (WakeAt(resume),))
    return _before(effects, transition(advance(mode, context), OBSERVED, context))


def awaiting_promotion(mode: modes.Mode, event: Event, context: Context) -> Transition:
    """A manual gate: only faiss.dev/promote opens it (spec.paused adds nothing to it)."""
    assert isinstance(mode, modes.AwaitingPromotion)
    if isinstance(event, PromoteRequested):
        return Transition(advance(mode.at, context))
    return Transition(mode)


def promoting(mode: modes.Mode, event: Event, context: Context) -> Transition:
    """All replicas, then the candidate takes over; past the progress deadline the rollout fails."""
    assert isinstance(mode, modes.Promoting)
    if isinstance(event, PromoteRequested):
        return Transition(_promoting(mode.at, context.now))
    if context.spec.paused:
        return Transition(modes.Paused(state.PAUSE_SPEC, None, mode))
    progress, deadline = _clock(mode.at.progress, context, wanted=context.total)
    mode = modes.Promoting(dataclasses.replace(mode.at, progress=progress))
    if context.ready >= context.total:
        return Transition(None, (Promote(),))
    if context.now < deadline:
        return Transition(mode, (WakeAt(deadline),))
    message = f"{context.ready}/{context.total} replicas ready while promoting"
    return fail(mode, context, state.REASON_PROGRESS_DEADLINE, message)


def rolling_back(mode: modes.Mode, event: Event, context: Context) -> Transition:
    """The target goes to all replicas while the revision it replaces keeps serving. Past the
    progress deadline the rollback stops where it is (nothing that serves is touched) and waits
    for an admin: faiss.dev/abort cancels it, faiss.dev/rollback picks another revision. Should
    the target become ready after all, the rollback still completes."""
    assert isinstance(mode, modes.RollingBack)
    if isinstance(event, PromoteRequested):
        return _no_canary(mode)
    progress, deadline = _clock(mode.progress, context, wanted=context.total)
    mode = modes.RollingBack(progress)
    if context.ready >= context.total:
        return Transition(None, (_rolled_back(),))
    if context.now < deadline:
        return Transition(mode, (WakeAt(deadline),))
    seconds = context.spec.rollout.progress_deadline_seconds
    message = (
        f"{state.REASON_PROGRESS_DEADLINE}: rollback to {context.candidate} has "
        f"{context.ready}/{context.total} replicas ready after {seconds}s"
    )
    return Transition(modes.Paused(state.PAUSE_FAILURE, message, mode), (Warn(state.REASON_PROGRESS_DEADLINE, message),))


def paused(mode: modes.Mode, event: Event, context: Context) -> Transition:
    """Stopped where it was. A spec pause ends with spec.paused; a failure pause with
    faiss.dev/promote (a canary), all replicas ready (a first deploy) or the rollback's target
    ready (which completes the rollback). faiss.dev/promote anywhere in a canary promotes fully."""
    assert isinstance(mode, modes.Paused)
    of = mode.of
    if isinstance(event, PromoteRequested):
        if isinstance(of, modes.Stepping):
            return Transition(_promoting(of, context.now))
        if isinstance(of, modes.Promoting):
            return Transition(_promoting(of.at, context.now))
        return _no_canary(mode)
    if isinstance(of, modes.Deploying):
        if context.ready < context.total:
            return Transition(mode)
        return deploying(modes.resumed(of, context.now), event, context)  # all ready after all: go on
    if isinstance(of, modes.RollingBack):
        progress, _ = _clock(of.progress, context, wanted=context.total)
        if context.ready >= context.total:
            return Transition(None, (_rolled_back(),))
        return Transition(dataclasses.replace(mode, of=modes.RollingBack(progress)))
    if context.spec.paused or mode.reason != state.PAUSE_SPEC:
        return Transition(mode)
    return transition(modes.resumed(of, context.now), event, context)


_BY_MODE: dict[type, Callable[[modes.Mode, Event, Context], Transition]] = {
    modes.Deploying: deploying,
    modes.Stepping: stepping,
    modes.AwaitingPromotion: awaiting_promotion,
    modes.Promoting: promoting,
    modes.RollingBack: rolling_back,
    modes.Paused: paused,
}


# --- shared moves -------------------------------------------------------------------------------


def advance(mode: modes.Stepping, context: Context) -> modes.Stepping | modes.Promoting:
    """On to the next canary step, or, after the last one, to all replicas before promotion."""
    position = mode.step + 1
    if canary.has_step(context.spec.rollout, position):
        weight = canary.step_at(context.spec.rollout, position).weight
        return modes.Stepping(position, weight, modes.Progress(context.now))
    progress = dataclasses.replace(mode.progress, started_at=context.now, unready_since=None)
    return modes.Promoting(dataclasses.replace(mode, progress=progress))


def fail(mode: modes.Stepping | modes.Promoting, context: Context, reason: str, message: str) -> Transition:
    """A failed canary: rolled back, paused or failed, as spec.rollout says (with nothing
    serving beside it there is nothing to roll back to)."""
    rollout = context.spec.rollout
    if not context.has_stable:
        return Transition(None, (End("Failed", reason, message),))
    if rollout.auto_rollback:
        return Transition(None, (End("RolledBack", reason, message, leave_service=True),))
    if rollout.on_failure == "Pause":
        return Transition(modes.Paused(state.PAUSE_FAILURE, f"{reason}: {message}", mode))
    return Transition(None, (End("Failed", reason, message),))


def _before(effects: tuple[Effect, ...], then: Transition) -> Transition:
    return Transition(then.mode, effects + then.effects)


def _promoting(at: modes.Stepping, now: datetime.datetime) -> modes.Promoting:
    """faiss.dev/promote: all replicas, no further steps or analysis."""
    return modes.Promoting(dataclasses.replace(at, progress=dataclasses.replace(at.progress, started_at=now)))


def _no_canary(mode: modes.Mode) -> Transition:
    return Transition(mode, (Warn(state.REASON_ANNOTATION_IGNORED, "faiss.dev/promote: no canary in progress"),))


def _rolled_back() -> Promote:
    return Promote("RolledBack", state.REASON_ROLLBACK_REQUESTED, "rolled back by faiss.dev/rollback")


def _clock(progress: modes.Progress, context: Context, *, wanted: int) -> tuple[modes.Progress, datetime.datetime]:
    """The step's clock after this pass, and its deadline.

    progressDeadlineSeconds counts from the step's start, or, for a step that was whole and lost
    a ready replica (a pod restart during a long pause), from that loss, recorded in
    unready_since and forgotten once the step is whole again."""
    if context.ready >= wanted:
        progress = dataclasses.replace(progress, unready_since=None)
        since = progress.started_at
    elif progress.ready_at is not None:
        if progress.unready_since is None:
            progress = dataclasses.replace(progress, unready_since=context.now)
        since = max(progress.started_at, progress.unready_since or context.now)
    else:
        since = progress.started_at
    return progress, since + datetime.timedelta(seconds=context.spec.rollout.progress_deadline_seconds)


@dataclasses.dataclass(frozen=True)
class Judged:
    """The step's analysis after this pass: passed, failed past failureLimit (`message` says
    why) or pending (an analysis is asked for)."""

    analysis: modes.Analysis
    verdict: Literal["passed", "failed", "pending"]
    effects: tuple[Effect, ...] = ()
    message: str = ""


def _judge(record: modes.Analysis, progress: modes.Progress, step: int, context: Context) -> Judged:
    """Judge the newest fresh measurement of this step (taken after the step was whole)."""
    if progress.ready_at is None:
        return Judged(record, "pending")
    fresh = [
        m
        for m in context.measurements
        if m.revision == context.candidate
        and m.step == step
        and m.taken_at >= progress.ready_at
        # Status times keep whole seconds, so compare at that precision or a measurement taken
        # at :52.5 would look newer than the :52 recorded for it and be judged again.
        and (record.last_at is None or _whole_seconds(m.taken_at) > record.last_at)
    ]
    effects: tuple[Effect, ...] = ()
    if fresh:
        latest = max(fresh, key=lambda m: m.taken_at)
        limits = analysis.thresholds(context.spec)
        if not context.has_stable:  # nothing to compare with on a first deploy
            limits = dataclasses.replace(limits, max_latency_ratio=None)
        result = analysis.judge(latest, limits)
        record = dataclasses.replace(record, last_at=_whole_seconds(latest.taken_at))
        if result.verdict == analysis.PASS:
            return Judged(dataclasses.replace(record, passed=True), "passed", (RecordLiveMetrics(latest),))
        if result.verdict == analysis.FAIL:
            record = dataclasses.replace(record, failures=record.failures + 1)
            if record.failures > context.spec.rollout.analysis.failure_limit:
                return Judged(record, "failed", message=f"step {step + 1}: {result.message}")
            warning = f"step {step + 1}: {result.message} (failure {record.failures})"
            effects = (Warn(state.REASON_ANALYSIS_FAILED, warning),)
    return Judged(record, "pending", effects + (Analyze(step), WakeAt(context.after(context.analysis_interval_seconds))))


def _whole_seconds(moment: datetime.datetime) -> datetime.datetime:
    return moment.replace(microsecond=0)
