"""Moving traffic, the orchestration: the rollout's mode steps once per pass (transitions.py
decides, this module carries the effects out on the draft), promotion, and the delayed
scale-down of the replaced revision.
"""

from __future__ import annotations

from faiss_operator.api import status as api_status
from faiss_operator.controller.decision import actions as plan_actions
from faiss_operator.controller.decision import analysis, canary, modes, pod_problems, state, transitions


def reconcile_rollout(inputs: state.Inputs, draft: state.Draft) -> None:
    if draft.candidate is None or draft.mode is None:
        return
    step(inputs, draft, transitions.OBSERVED)


def step(inputs: state.Inputs, draft: state.Draft, event: transitions.Event) -> None:
    """Feed `event` to the rollout under way and carry out what follows."""
    if draft.mode is None or draft.candidate is None:
        return
    carry_out(inputs, draft, transitions.transition(draft.mode, event, context(inputs, draft)))


def context(inputs: state.Inputs, draft: state.Draft) -> transitions.Context:
    """What this pass knows of the candidate, for transitions.py."""
    candidate = draft.candidate or ""
    entry = draft.entry(candidate)
    ready = inputs.children.ready_replicas(candidate)
    return transitions.Context(
        candidate=candidate,
        now=inputs.now,
        spec=inputs.spec,
        ready=ready,
        has_stable=draft.current is not None,
        unmeasured=entry is not None and entry.metrics is not None and entry.metrics.recall is None,
        measurements=tuple(m for m in inputs.measurements if m.revision == candidate),
        analysis_interval_seconds=inputs.settings.analysis_interval_seconds,
        why_missing=pod_problems.why_missing(inputs.children, candidate) if ready < inputs.total else None,
    )


def carry_out(inputs: state.Inputs, draft: state.Draft, result: transitions.Transition) -> None:
    """The effects of `result`, in order, then the mode it goes to (an ending effect leaves no
    rollout, a rollback's target then enters RollingBack)."""
    for effect in result.effects:
        match effect:
            case transitions.Promote(replaced=replaced, reason=reason, message=message):
                _promote(inputs, draft, replaced=replaced, reason=reason, message=message)
            case transitions.End(state=ending, reason=reason, message=message, leave_service=leave):
                state.end_candidate(draft, state=ending, reason=reason, message=message)
                if leave:
                    draft.scale_downs = []  # a rollback leaves only the revision it returns to behind the Service
            case transitions.Warn(reason=reason, message=message):
                draft.warn(reason, message)
            case transitions.WakeAt(at=at):
                draft.wake_at.append(at)
            case transitions.Analyze(step=position):
                _ask_analysis(inputs, draft, position)
            case transitions.RecordLiveMetrics(measurement=measurement):
                _record_live_metrics(draft, measurement)
            case transitions.Retarget(revision=target):
                message = "rollback target of faiss.dev/rollback"
                draft.move(target, "Built", reason=state.REASON_ROLLBACK_REQUESTED, message=message)
                draft.candidate = target
    draft.enter(result.mode)


def _ask_analysis(inputs: state.Inputs, draft: state.Draft, position: int) -> None:
    entry = draft.entry(draft.candidate)
    if entry is None or draft.candidate is None:
        return
    draft.actions.append(
        plan_actions.Analyze(
            candidate=draft.candidate,
            stable=draft.current,
            step=position,
            artifact=entry.artifact,
            k=inputs.spec.evaluation.k,
        )
    )


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
    draft.enter(None)
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
    if draft.candidate is not None and draft.mode is not None:
        wanted[draft.candidate] = inputs.total
        at = _step_of(draft.mode)
        if at is not None:
            wanted[draft.candidate] = canary.step_replicas(inputs.spec.rollout, total=inputs.total, position=at.step)
    return wanted


def _step_of(mode: modes.Mode) -> modes.Stepping | None:
    """The canary step whose replicas the candidate has: none when it goes to all replicas."""
    match mode:
        case modes.Stepping():
            return mode
        case modes.AwaitingPromotion(at=at):
            return at
        case modes.Paused(of=modes.Stepping() as at):
            return at
    return None
