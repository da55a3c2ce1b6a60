"""The admin annotations: faiss.dev/promote, abort, rollback (previous or a name) and retry.

Each is acted on, or refused with a Warning Event, and then removed from the resource.
"""

from __future__ import annotations

from faiss_operator.api import resource as api_resource
from faiss_operator.api import status as api_status
from faiss_operator.controller import actions as plan_actions
from faiss_operator.controller import rollout, state


def handle_annotations(inputs: state.Inputs, draft: state.Draft) -> None:
    annotations = inputs.resource.annotations
    handlers = (
        (api_resource.ANNOTATION_ABORT, _abort),
        (api_resource.ANNOTATION_ROLLBACK, _rollback),
        (api_resource.ANNOTATION_RETRY, _retry),
        (api_resource.ANNOTATION_PROMOTE, _promote_request),
    )
    for key, handler in handlers:
        if key in annotations:
            draft.actions.append(plan_actions.RemoveAnnotation(key))
            handler(inputs, draft, annotations[key].strip())


def _abort(inputs: state.Inputs, draft: state.Draft, value: str) -> None:
    if value.lower() != "true":
        draft.warn(state.REASON_ANNOTATION_IGNORED, f'{api_resource.ANNOTATION_ABORT}: expected "true", got {value!r}')
        return
    entry = draft.entry(draft.candidate)
    if entry is None:
        draft.warn(state.REASON_ANNOTATION_IGNORED, f"{api_resource.ANNOTATION_ABORT}: no rollout in progress")
        return
    if draft.rollout is not None and draft.rollout.mode == "Rollback":
        # Cancelling a rollback leaves the revision that serves as it is; the target goes back
        # to history, where a later faiss.dev/rollback can pick it again.
        state.end_candidate(
            draft, state="Retired", reason=state.REASON_ABORTED, message="rollback aborted by faiss.dev/abort"
        )
        return
    ending: api_status.RevisionState = "Failed" if entry.state == "Building" else "RolledBack"
    state.end_candidate(draft, state=ending, reason=state.REASON_ABORTED, message="aborted by faiss.dev/abort")


def _rollback(inputs: state.Inputs, draft: state.Draft, value: str) -> None:
    key = api_resource.ANNOTATION_ROLLBACK
    if draft.current is None:
        draft.warn(state.REASON_ANNOTATION_IGNORED, f"{key}: no revision serves yet, nothing to roll back from")
        return
    in_canary = draft.candidate is not None and (draft.rollout is None or draft.rollout.mode != "Rollback")
    if in_canary and value in (api_resource.ROLLBACK_PREVIOUS, draft.current):
        state.end_candidate(
            draft, state="RolledBack", reason=state.REASON_ROLLBACK_REQUESTED, message=f"rolled back by {key}"
        )
        return
    if value == api_resource.ROLLBACK_PREVIOUS:
        target = next(
            (e for e in draft.revisions if e.name != draft.current and e.state == "Retired" and state.has_artifact(e)),
            None,
        )
        if target is None:
            draft.warn(state.REASON_ANNOTATION_IGNORED, f"{key}: no previous revision with a retained artifact")
            return
    else:
        target = draft.entry(value)
        if target is None or target.name == draft.current or not state.has_artifact(target):
            known = ", ".join(e.name for e in draft.revisions if e.name != draft.current and state.has_artifact(e))
            draft.warn(
                state.REASON_ANNOTATION_IGNORED,
                f"{key}: {value!r} is not a retained revision to roll back to; candidates: {known or 'none'}",
            )
            return
    if draft.candidate is not None:
        state.end_candidate(
            draft, state="RolledBack", reason=state.REASON_ROLLBACK_REQUESTED, message=f"rolled back by {key}"
        )
    draft.update(
        target.name, state="Built", reason=state.REASON_ROLLBACK_REQUESTED, message=f"rollback target of {key}"
    )
    draft.candidate = target.name
    draft.rollout = api_status.RolloutStatus(mode="Rollback", weight=100, step_started_at=inputs.now)


def _retry(inputs: state.Inputs, draft: state.Draft, value: str) -> None:
    name = inputs.desired.name
    entry = draft.entry(name)
    if entry is None or entry.state not in ("Failed", "RolledBack") or name == draft.current:
        draft.warn(state.REASON_ANNOTATION_IGNORED, f"{api_resource.ANNOTATION_RETRY}: revision {name} has not failed")
        return
    if draft.candidate is not None:
        state.end_candidate(
            draft, state="Retired", reason=state.REASON_SUPERSEDED, message=f"superseded by the retry of {name}"
        )
    if state.has_artifact(entry):
        draft.update(name, state="Built", reason=state.REASON_RETRIED, message=None)
    else:
        draft.update(
            name, state="Building", reason=state.REASON_RETRIED, message=None, build_attempt=entry.build_attempt + 1
        )
    draft.candidate = name
    draft.rollout = None


def _promote_request(inputs: state.Inputs, draft: state.Draft, value: str) -> None:
    """At a step without pauseSeconds, go on to the next step; anywhere else, promote fully
    (all replicas, no further steps or analysis)."""
    if value.lower() != "true":
        draft.warn(
            state.REASON_ANNOTATION_IGNORED, f'{api_resource.ANNOTATION_PROMOTE}: expected "true", got {value!r}'
        )
        return
    if draft.rollout is None or draft.rollout.mode != "Canary":
        draft.warn(state.REASON_ANNOTATION_IGNORED, f"{api_resource.ANNOTATION_PROMOTE}: no canary in progress")
        return
    if draft.rollout.paused and draft.rollout.pause_reason == state.PAUSE_AWAITING_PROMOTION:
        rollout.advance(inputs, draft)  # a step without pauseSeconds is a manual gate: open it
        return
    draft.update_rollout(promoting=True, paused=False, pause_reason=None, step_started_at=inputs.now)
