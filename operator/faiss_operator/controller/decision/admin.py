"""The admin annotations: faiss.dev/promote, abort, rollback (previous or a name) and retry.

Each is acted on exactly once, or refused with a Warning Event, and then removed from the resource.
Exactly once although the annotation may be seen again before its removal lands: the value acted
on is recorded in status.handledAnnotations, which the Kopf layer writes before it removes the
annotation (see actions.py). An annotation seen with its value recorded is only removed again; a
record whose annotation is gone is dropped, so the same value set later acts again.
"""

from __future__ import annotations

from faiss_operator.api import resource as api_resource
from faiss_operator.api import status as api_status
from faiss_operator.controller.decision import actions as plan_actions
from faiss_operator.controller.decision import gates, modes, rollout, state, transitions

# Acted on in this order when several are set at once.
_ORDER = (
    api_resource.ANNOTATION_ABORT,
    api_resource.ANNOTATION_ROLLBACK,
    api_resource.ANNOTATION_RETRY,
    api_resource.ANNOTATION_PROMOTE,
)


def pending(resource: api_resource.Resource, draft: state.Draft) -> list[tuple[str, str]]:
    """The admin annotations to act on now, as (key, value); every one present is removed.

    Updates the record in `draft.handled`: drops the entries whose annotation is gone, adds the
    ones returned."""
    annotations = resource.annotations
    for key in list(draft.handled):
        if key not in annotations:
            del draft.handled[key]
    todo = []
    for key in _ORDER:
        if key not in annotations:
            continue
        draft.actions.append(plan_actions.RemoveAnnotation(key))
        value = annotations[key]
        if draft.handled.get(key) == value:
            continue  # acted on already; its removal was lost or has not landed yet
        draft.handled[key] = value
        todo.append((key, value.strip()))
    return todo


def refuse_all(resource: api_resource.Resource, draft: state.Draft, why: str) -> None:
    """Record and remove every new admin annotation with a Warning Event saying `why`."""
    for key, value in pending(resource, draft):
        draft.warn(state.REASON_ANNOTATION_IGNORED, f"{key}={value!r} not acted on: {why}")


def handle_annotations(inputs: state.Inputs, draft: state.Draft) -> None:
    handlers = {
        api_resource.ANNOTATION_ABORT: _abort,
        api_resource.ANNOTATION_ROLLBACK: _rollback,
        api_resource.ANNOTATION_RETRY: _retry,
        api_resource.ANNOTATION_PROMOTE: _promote_request,
    }
    for key, value in pending(inputs.resource, draft):
        handlers[key](inputs, draft, value)


def _abort(inputs: state.Inputs, draft: state.Draft, value: str) -> None:
    if value.lower() != "true":
        draft.warn(state.REASON_ANNOTATION_IGNORED, f'{api_resource.ANNOTATION_ABORT}: expected "true", got {value!r}')
        return
    entry = draft.entry(draft.candidate)
    if entry is None:
        draft.warn(state.REASON_ANNOTATION_IGNORED, f"{api_resource.ANNOTATION_ABORT}: no rollout in progress")
        return
    event = transitions.AbortRequested(building=entry.state == "Building")
    rollout.carry_out(inputs, draft, transitions.abort(draft.mode, event))


def served(entry: api_status.RevisionStatus) -> bool:
    """A revision took all traffic once (it was Active) and its files are kept.

    A status written before revisions[].promotedAt existed marks a revision replaced by a
    promotion as Retired with no reason (a superseded one had reason Superseded): that one
    served too."""
    legacy = entry.promoted_at is None and entry.state == "Retired" and entry.reason is None
    return (entry.promoted_at is not None or legacy) and state.has_artifact(entry)


def previous_revision(draft: state.Draft) -> api_status.RevisionStatus | None:
    """`rollback: previous`: the revision that was Active before the current one (the latest
    promoted other than the current), so two rollbacks in a row go back and forth. Revisions
    from an older status without promotedAt come after those with it, newest first."""
    current = draft.entry(draft.current)
    since = current.promoted_at if current is not None else None
    candidates = [
        (position, e)
        for position, e in enumerate(draft.revisions)
        if e.name != draft.current
        and served(e)
        and (since is None or e.promoted_at is None or e.promoted_at <= since)
    ]
    if not candidates:
        return None
    dated = [(e.promoted_at, -position, e) for position, e in candidates if e.promoted_at is not None]
    if dated:
        return max(dated, key=lambda t: (t[0], t[1]))[2]
    return min(candidates, key=lambda t: t[0])[1]  # history is newest first


def _rollback(inputs: state.Inputs, draft: state.Draft, value: str) -> None:
    key = api_resource.ANNOTATION_ROLLBACK
    if draft.current is None:
        draft.warn(state.REASON_ANNOTATION_IGNORED, f"{key}: no revision serves yet, nothing to roll back from")
        return
    in_canary = draft.candidate is not None and not modes.is_rolling_back(draft.mode)
    if in_canary and value in (api_resource.ROLLBACK_PREVIOUS, draft.current):
        # The stable serves on; only the revision in progress goes, and what the admin rolled
        # away from leaves the Service now.
        rollout.carry_out(inputs, draft, transitions.rollback(draft.mode, transitions.RollbackRequested(), inputs.now))
        return
    target = _rollback_target(draft, value)
    if target is None:
        return
    failures = gates.failures(inputs.spec, target.metrics)
    if failures:
        draft.warn(
            state.REASON_ROLLBACK_REFUSED,
            f"{key}: revision {target.name} does not meet the evaluation gates: {'; '.join(failures)}",
        )
        return
    event = transitions.RollbackRequested(target.name)
    rollout.carry_out(inputs, draft, transitions.rollback(draft.mode, event, inputs.now))


def _rollback_target(draft: state.Draft, value: str) -> api_status.RevisionStatus | None:
    """The revision `faiss.dev/rollback: value` names (`previous`, or a name) when it served
    and is not the one serving; otherwise None, said in a Warning Event."""
    key = api_resource.ANNOTATION_ROLLBACK
    if value == api_resource.ROLLBACK_PREVIOUS:
        target = previous_revision(draft)
        if target is None:
            draft.warn(
                state.REASON_ROLLBACK_REFUSED, f"{key}: no revision served before {draft.current} (with its files kept)"
            )
        return target
    target = draft.entry(value)
    if target is None or target.name == draft.current or not served(target):
        known = ", ".join(e.name for e in draft.revisions if e.name != draft.current and served(e))
        draft.warn(
            state.REASON_ROLLBACK_REFUSED,
            f"{key}: {value!r} {_why_not(draft, target)}; revisions that served: {known or 'none'}",
        )
        return None
    return target


def _why_not(draft: state.Draft, target: api_status.RevisionStatus | None) -> str:
    """Why `target` cannot be rolled back to, in words."""
    if target is not None and target.name == draft.current:
        return "is the revision that serves"
    if target is not None and target.name == draft.candidate:
        return "is the rollout in progress (faiss.dev/abort=true stops it)"
    return "never served (or its files are gone)"


def _retry(inputs: state.Inputs, draft: state.Draft, value: str) -> None:
    name = inputs.desired.name
    entry = draft.entry(name)
    if entry is None or entry.state not in ("Failed", "RolledBack") or name == draft.current:
        draft.warn(state.REASON_ANNOTATION_IGNORED, f"{api_resource.ANNOTATION_RETRY}: revision {name} has not failed")
        return
    if draft.candidate is not None:
        state.end_candidate(
            draft, state="Superseded", reason=state.REASON_SUPERSEDED, message=f"superseded by the retry of {name}"
        )
    if state.has_artifact(entry):
        draft.move(name, "Built", reason=state.REASON_RETRIED, message=None)
    else:
        draft.move(name, "Building", reason=state.REASON_RETRIED, message=None, build_attempt=entry.build_attempt + 1)
    draft.candidate = name
    draft.enter(None)


def _promote_request(inputs: state.Inputs, draft: state.Draft, value: str) -> None:
    """At a step without pauseSeconds, go on to the next step; anywhere else, promote fully
    (all replicas, no further steps or analysis)."""
    if value.lower() != "true":
        draft.warn(
            state.REASON_ANNOTATION_IGNORED, f'{api_resource.ANNOTATION_PROMOTE}: expected "true", got {value!r}'
        )
        return
    if draft.mode is None:
        draft.warn(state.REASON_ANNOTATION_IGNORED, f"{api_resource.ANNOTATION_PROMOTE}: no canary in progress")
        return
    rollout.step(inputs, draft, transitions.PromoteRequested())
