"""Moving traffic: the first deploy, canary steps by ready replicas, analysis, promotion,
rollback and the delayed scale-down of the replaced revision.
"""

from __future__ import annotations

import dataclasses
import datetime

from faiss_operator.api import status as api_status
from faiss_operator.controller.decision import actions as plan_actions
from faiss_operator.controller.decision import analysis, canary, pod_problems, state


def reconcile_rollout(inputs: state.Inputs, draft: state.Draft) -> None:
    rollout = draft.rollout
    if draft.candidate is None or rollout is None:
        return
    ready = inputs.children.ready_replicas(draft.candidate)
    if rollout.mode == "Deploy":
        _reconcile_first_deploy(inputs, draft, ready)
        return
    if rollout.mode == "Rollback":
        _reconcile_rollback(inputs, draft, ready)
        return
    _reconcile_canary(inputs, draft, ready)


def progress_deadline(inputs: state.Inputs, draft: state.Draft, *, ready: int, wanted: int) -> datetime.datetime:
    """When the current step runs out of time: progressDeadlineSeconds after its last progress.

    Progress is the step starting, and the step's replicas being all ready: a step that was
    ready and lost a replica (a pod restart during a long pause) counts from that loss, recorded
    in rollout.unreadySince and cleared once the step is whole again."""
    rollout = draft.rollout
    seconds = inputs.spec.rollout.progress_deadline_seconds
    if rollout is None:
        return inputs.after(seconds)
    if ready >= wanted:
        if rollout.unready_since is not None:
            draft.update_rollout(unready_since=None)
        since = rollout.step_started_at
    elif rollout.step_ready_at is not None:
        if rollout.unready_since is None:
            draft.update_rollout(unready_since=inputs.now)
        since = max(rollout.step_started_at, rollout.unready_since or inputs.now)
    else:
        since = rollout.step_started_at
    return since + datetime.timedelta(seconds=seconds)


def _reconcile_rollback(inputs: state.Inputs, draft: state.Draft, ready: int) -> None:
    """The target goes to all replicas while the revision it replaces keeps serving. Past the
    progress deadline the rollback stops where it is (nothing that serves is touched) and waits
    for an admin: faiss.dev/abort cancels it, faiss.dev/rollback picks another revision. Should
    the target become ready after all, the rollback still completes."""
    if draft.rollout is None or draft.candidate is None:
        return
    deadline = progress_deadline(inputs, draft, ready=ready, wanted=inputs.total)
    if ready >= inputs.total:
        _promote(
            inputs,
            draft,
            replaced="RolledBack",
            reason=state.REASON_ROLLBACK_REQUESTED,
            message="rolled back by faiss.dev/rollback",
        )
        return
    if draft.rollout.paused:
        return
    if inputs.past(deadline, draft):
        seconds = inputs.spec.rollout.progress_deadline_seconds
        message = (
            f"{state.REASON_PROGRESS_DEADLINE}: rollback to {draft.candidate} has "
            f"{ready}/{inputs.total} replicas ready after {seconds}s"
        )
        draft.update_rollout(paused=True, pause_reason=state.PAUSE_FAILURE, pause_message=message)
        draft.warn(state.REASON_PROGRESS_DEADLINE, message)


def _reconcile_first_deploy(inputs: state.Inputs, draft: state.Draft, ready: int) -> None:
    """All replicas at once (nothing serves yet). A revision that reuses an artifact has no
    build-time recall, so its gates are checked live before it becomes Active.

    At the progress deadline, a revision with no ready replica fails; one with some keeps them:
    it becomes Active if it needs no live analysis (Degraded shows the missing replicas), and
    otherwise waits paused for an admin, serving what it has."""
    rollout = draft.rollout
    if rollout is None or draft.candidate is None:
        return
    if rollout.paused:
        if ready < inputs.total:
            return
        # All replicas became ready after all: go on from here.
        rollout = rollout.model_copy(
            update={"paused": False, "pause_reason": None, "pause_message": None, "step_started_at": inputs.now}
        )
        draft.rollout = rollout
    deadline = progress_deadline(inputs, draft, ready=ready, wanted=inputs.total)
    entry = draft.entry(draft.candidate)
    unmeasured = entry is not None and entry.metrics is not None and entry.metrics.recall is None
    if ready < inputs.total:
        if not inputs.past(deadline, draft):
            return
        message = f"{ready}/{inputs.total} replicas ready after {inputs.spec.rollout.progress_deadline_seconds}s"
        if ready == 0:
            state.end_candidate(draft, state="Failed", reason=state.REASON_PROGRESS_DEADLINE, message=message)
        elif unmeasured and not rollout.analysis_passed:
            draft.update_rollout(paused=True, pause_reason=state.PAUSE_FAILURE, pause_message=message)
            draft.warn(state.REASON_PROGRESS_DEADLINE, message)
        else:
            draft.warn(state.REASON_PROMOTED_DEGRADED, f"revision {draft.candidate} serves with {message}")
            _promote(inputs, draft)
        return
    if draft.rollout is not None and draft.rollout.step_ready_at is None:
        draft.update_rollout(step_ready_at=inputs.now)
    if unmeasured and not rollout.analysis_passed and not _analyse(inputs, draft):
        if draft.rollout is not None and inputs.past(deadline, draft):
            message = "live analysis inconclusive"
            state.end_candidate(draft, state="Failed", reason=state.REASON_PROGRESS_DEADLINE, message=message)
        return
    _promote(inputs, draft)


def _reconcile_canary(inputs: state.Inputs, draft: state.Draft, ready: int) -> None:
    if draft.rollout is None or draft.candidate is None:
        return
    spec = inputs.spec
    if spec.paused:
        if not draft.rollout.paused:
            draft.update_rollout(paused=True, pause_reason=state.PAUSE_SPEC, pause_message=None)
        return
    if draft.rollout.paused and draft.rollout.pause_reason == state.PAUSE_SPEC:
        draft.update_rollout(paused=False, pause_reason=None, pause_message=None, step_started_at=inputs.now)
    rollout = draft.rollout
    if rollout.paused:
        return
    if rollout.promoting:
        deadline = progress_deadline(inputs, draft, ready=ready, wanted=inputs.total)
        if ready >= inputs.total:
            _promote(inputs, draft)
        elif inputs.past(deadline, draft):
            _fail_rollout(
                inputs, draft, state.REASON_PROGRESS_DEADLINE, f"{ready}/{inputs.total} replicas ready while promoting"
            )
        return
    step = canary.step_at(spec.rollout, rollout.step)
    wanted = canary.step_replicas(spec.rollout, total=inputs.total, position=rollout.step)
    deadline = progress_deadline(inputs, draft, ready=ready, wanted=wanted)
    if ready < wanted:
        if inputs.past(deadline, draft):
            message = f"step {rollout.step + 1}: {ready}/{wanted} candidate replicas ready"
            why = pod_problems.why_missing(inputs.children, draft.candidate)
            message += f" ({why})" if why else ""
            _fail_rollout(inputs, draft, state.REASON_PROGRESS_DEADLINE, message)
        return
    if rollout.step_ready_at is None:
        draft.update_rollout(step_ready_at=inputs.now)
    if not draft.rollout.analysis_passed and not _analyse(inputs, draft):
        if draft.rollout is not None and not draft.rollout.paused and inputs.past(deadline, draft):
            _fail_rollout(
                inputs, draft, state.REASON_PROGRESS_DEADLINE, f"step {rollout.step + 1}: analysis inconclusive"
            )
        return
    rollout = draft.rollout
    if rollout.step_ready_at is None:
        return
    if step.pause_seconds is None:
        draft.update_rollout(paused=True, pause_reason=state.PAUSE_AWAITING_PROMOTION, pause_message=None)
        return
    resume = rollout.step_ready_at + datetime.timedelta(seconds=step.pause_seconds)
    if inputs.now < resume:
        draft.wake_at.append(resume)
        return
    advance(inputs, draft)
    _reconcile_canary(inputs, draft, ready)


def advance(inputs: state.Inputs, draft: state.Draft) -> None:
    """On to the next canary step, or, after the last one, to all replicas before promotion."""
    if draft.rollout is None:
        return
    position = draft.rollout.step + 1
    if canary.has_step(inputs.spec.rollout, position):
        draft.rollout = api_status.RolloutStatus(
            mode="Canary",
            step=position,
            weight=canary.step_at(inputs.spec.rollout, position).weight,
            step_started_at=inputs.now,
        )
    else:
        draft.update_rollout(
            promoting=True,
            paused=False,
            pause_reason=None,
            pause_message=None,
            step_started_at=inputs.now,
            unready_since=None,
        )


def _analyse(inputs: state.Inputs, draft: state.Draft) -> bool:
    """Judge the newest fresh measurement of this step; True once the step's analysis passed."""
    rollout = draft.rollout
    if rollout is None or draft.candidate is None or rollout.step_ready_at is None:
        return False
    fresh = [
        m
        for m in inputs.measurements
        if m.revision == draft.candidate
        and m.step == rollout.step
        and m.taken_at >= rollout.step_ready_at
        # Status times keep whole seconds, so compare at that precision or a measurement taken
        # at :52.5 would look newer than the :52 recorded for it and be judged again.
        and (rollout.last_analysis_at is None or _whole_seconds(m.taken_at) > rollout.last_analysis_at)
    ]
    if fresh:
        latest = max(fresh, key=lambda m: m.taken_at)
        limits = analysis.thresholds(inputs.spec)
        if draft.current is None:  # nothing to compare with on a first deploy
            limits = dataclasses.replace(limits, max_latency_ratio=None)
        result = analysis.judge(latest, limits)
        draft.update_rollout(last_analysis_at=_whole_seconds(latest.taken_at))
        if result.verdict == analysis.PASS:
            draft.update_rollout(analysis_passed=True)
            _record_live_metrics(draft, latest)
            return True
        if result.verdict == analysis.FAIL:
            failures = rollout.analysis_failures + 1
            draft.update_rollout(analysis_failures=failures)
            if failures > inputs.spec.rollout.analysis.failure_limit:
                _fail_rollout(inputs, draft, state.REASON_ANALYSIS_FAILED, f"step {rollout.step + 1}: {result.message}")
                return False
            draft.warn(state.REASON_ANALYSIS_FAILED, f"step {rollout.step + 1}: {result.message} (failure {failures})")
    entry = draft.entry(draft.candidate)
    if entry is None:
        return False
    draft.actions.append(
        plan_actions.Analyze(
            candidate=draft.candidate,
            stable=draft.current,
            step=rollout.step,
            artifact=entry.artifact,
            k=inputs.spec.evaluation.k,
        )
    )
    draft.wake_at.append(inputs.after(inputs.settings.analysis_interval_seconds))
    return False


def _record_live_metrics(draft: state.Draft, measurement: analysis.Measurement) -> None:
    """A revision that reuses an artifact has no build-time recall: its live one fills the gap."""
    entry = draft.entry(measurement.revision)
    if entry is None or entry.metrics is None or entry.metrics.recall is not None:
        return
    probe = measurement.candidate
    draft.update(
        entry.name,
        metrics=entry.metrics.model_copy(
            update={
                "recall": probe.recall,
                "p50_latency_ms": probe.p50_latency_ms,
                "p99_latency_ms": probe.p99_latency_ms,
            }
        ),
    )


def _fail_rollout(inputs: state.Inputs, draft: state.Draft, reason: str, message: str) -> None:
    rollout_spec = inputs.spec.rollout
    if draft.current is None:  # a first deploy has nothing to roll back to
        state.end_candidate(draft, state="Failed", reason=reason, message=message)
    elif rollout_spec.auto_rollback:
        state.end_candidate(draft, state="RolledBack", reason=reason, message=message)
        draft.scale_downs = []  # a rollback leaves only the revision it returns to behind the Service
    elif rollout_spec.on_failure == "Pause":
        draft.update_rollout(paused=True, pause_reason=state.PAUSE_FAILURE, pause_message=f"{reason}: {message}")
    else:
        state.end_candidate(draft, state="Failed", reason=reason, message=message)


def _promote(
    inputs: state.Inputs,
    draft: state.Draft,
    *,
    replaced: api_status.RevisionState = "Retired",
    reason: str | None = None,
    message: str | None = None,
) -> None:
    """The candidate takes all traffic; the replaced revision (which becomes `replaced`) keeps
    serving for the delay, unless this ends a rollback: then every other revision leaves the
    Service at once (the serving pods' own drain delay covers endpoint propagation)."""
    if draft.candidate is None:
        return
    previous = draft.current
    draft.move(draft.candidate, "Active", reason=None, message=None, promoted_at=inputs.now)
    draft.current = draft.candidate
    draft.candidate = None
    draft.rollout = None
    draft.scale_downs = [s for s in draft.scale_downs if s.revision != draft.current]
    if replaced == "RolledBack":
        draft.scale_downs = []
    if previous is not None:
        draft.move(previous, replaced, reason=reason, message=message or f"replaced by {draft.current}")
        delay = inputs.spec.rollout.scale_down_delay_seconds
        if delay > 0 and replaced != "RolledBack":
            draft.scale_downs.append(api_status.ScaleDown(revision=previous, after=inputs.after(delay)))


def expire_scale_downs(inputs: state.Inputs, draft: state.Draft) -> None:
    keep = []
    for pending in draft.scale_downs:
        if pending.after > inputs.now and pending.revision not in (draft.current, draft.candidate):
            keep.append(pending)
            draft.wake_at.append(pending.after)
    draft.scale_downs = keep


def serving_replicas(inputs: state.Inputs, draft: state.Draft) -> dict[str, int]:
    """How many replicas each revision that should serve gets."""
    wanted: dict[str, int] = {s.revision: inputs.total for s in draft.scale_downs}
    if draft.current is not None:
        wanted[draft.current] = inputs.total
    if draft.candidate is not None and draft.rollout is not None:
        rollout = draft.rollout
        if rollout.mode != "Canary" or rollout.promoting:
            wanted[draft.candidate] = inputs.total
        else:
            wanted[draft.candidate] = canary.step_replicas(
                inputs.spec.rollout, total=inputs.total, position=rollout.step
            )
    return wanted


def _whole_seconds(moment: datetime.datetime) -> datetime.datetime:
    return moment.replace(microsecond=0)
