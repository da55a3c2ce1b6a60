"""The state machine: one pure function from observed state to actions and a new status.

`decide(resource, children, measurements, now, settings=...)` reads the FaissIndex (spec,
status, annotations), its child objects, the latest live measurements and the time, and returns
a `Plan`. It never performs I/O nor reads a clock, so the same inputs always give the same plan
and a restart at any moment continues where the previous run stopped.

The steps run in a fixed order, each returning early while its part is unfinished (after Argo
Rollouts' canary reconciler): adopt what serves but the status does not record, adopt the spec's
revision, act on admin annotations, build, gates, rollout, scale-downs, history, children; then
conditions and phase are derived from the result.

No input makes it raise: a spec it cannot act on (including a pvc:// URI that leaves its claim)
gives Stalled and Degraded with the reason, and the revision in flight or serving is held
(hold.py): its rollout goes on, admin annotations act, children stay in sync.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any, Literal

from faiss_operator.api import resource as api_resource
from faiss_operator.api import spec as api_spec
from faiss_operator.api import status as api_status
from faiss_operator.controller.decision import actions as plan_actions
from faiss_operator.controller.decision import (
    admin,
    analysis,
    conditions,
    hold,
    housekeeping,
    lifecycle,
    manifests,
    object_store,
    patches,
    recovery,
    revisions,
    rollout,
    state,
    status_view,
    storage,
)
from faiss_operator.controller.decision import observed
from faiss_operator.controller.decision import settings as operator_settings


# How soon to look again after acting on an admin annotation, to drop its record once removed.
ANNOTATION_RECHECK_SECONDS = 1
NAMESPACE_TERMINATING = "NamespaceTerminating"  # the reason of the Event of a release in a namespace being deleted


def decide(
    resource: api_resource.Resource,
    children: observed.Children,
    measurements: Sequence[analysis.Measurement],
    now: datetime.datetime,
    *,
    settings: operator_settings.OperatorSettings,
) -> plan_actions.Plan:
    """Everything the operator should do next for one FaissIndex, and the status to write."""
    now = now.astimezone(datetime.timezone.utc).replace(microsecond=0)
    if children.namespace_terminating:
        return _namespace_terminating(resource, children, settings)
    if resource.deletion_timestamp is not None:
        return _deletion(resource, children, settings)
    parsed = resource.parsed_spec  # parsed once per pass: observe read the same object
    if isinstance(parsed, api_resource.SpecError):
        return _hold(resource, children, measurements, now, settings, problem=parsed)
    try:
        desired = revisions.desired_revision(
            parsed,
            settings,
            index_name=resource.name,
            source_objects=children.source_objects,
            history=resource.status.revisions,
        )
    except revisions.SourceUnavailableError as error:
        # The spec is valid, only its revision is unknown: the held revision runs on it whole
        # (its pods keep the objectStore settings they download with).
        return _hold(resource, children, measurements, now, settings, problem=error, valid_spec=parsed)
    except api_resource.SpecError as error:
        return _hold(resource, children, measurements, now, settings, problem=error)
    return _run(state.Inputs(resource, parsed, desired, children, measurements, now, settings), invalid=None)


def _hold(
    resource: api_resource.Resource,
    children: observed.Children,
    measurements: Sequence[analysis.Measurement],
    now: datetime.datetime,
    settings: operator_settings.OperatorSettings,
    *,
    problem: api_resource.SpecError,
    valid_spec: api_spec.FaissIndexSpec | None = None,
) -> plan_actions.Plan:
    """A spec that cannot be acted on: run the held revision (with `valid_spec` when the spec
    itself is fine, else with the spec it was made from), or only report the problem."""
    reason = _reason(problem)
    held = hold.hold(resource.spec, resource.status, settings)
    if held is None:
        return _refuse(resource, str(problem), now, reason=reason)
    spec, desired = held
    if valid_spec is not None:
        spec = valid_spec
    inputs = state.Inputs(resource, spec, desired, children, measurements, now, settings)
    return _run(inputs, invalid=str(problem), reason=reason)


def _reason(problem: api_resource.SpecError) -> str:
    """The condition reason of a spec that cannot be acted on: InvalidSpec, or SourceUnavailable
    when the spec is fine but the store did not describe a source object."""
    return str(getattr(problem, "reason", conditions.INVALID_SPEC))


def _run(inputs: state.Inputs, *, invalid: str | None, reason: str = conditions.INVALID_SPEC) -> plan_actions.Plan:
    """The steps in their order. With an `invalid` spec the revision in flight is held (see
    hold.py): nothing new is adopted, built or started, everything under way goes on."""
    resource, now = inputs.resource, inputs.now
    draft = state.draft_from(resource.status)
    if api_resource.FINALIZER not in resource.finalizers:
        draft.actions.append(plan_actions.AddFinalizer(api_resource.FINALIZER))
    recovery.adopt_serving(inputs, draft)
    passes = 1 if invalid is not None else 2
    for position in range(passes):
        if position == 1 and draft.candidate is not None:
            break
        # A second pass only when the rollout ended in the first (a rollback completing, most of
        # all): the spec's revision goes in at once, rather than at some later, unrelated event.
        if invalid is None:
            lifecycle.adopt_desired(inputs, draft)
        if position == 0:
            admin.handle_annotations(inputs, draft)
        if invalid is None:
            lifecycle.reconcile_build(inputs, draft)
            lifecycle.reconcile_gates(inputs, draft)
        rollout.reconcile_rollout(inputs, draft)
    rollout.expire_scale_downs(inputs, draft)
    if invalid is None:  # while the spec is invalid no revision is added: history waits too
        housekeeping.collect_garbage(inputs, draft)
    housekeeping.sync_children(inputs, draft)
    status = status_view.finish(inputs, draft)
    if invalid is not None:
        status = _invalid_spec(status, invalid, now, resource.generation, before=resource.status.conditions, reason=reason)
        status = status.model_copy(update={"index_type": resource.status.index_type or status.index_type})
        if status.conditions != resource.status.conditions:
            draft.events.insert(0, plan_actions.Event("Warning", reason, invalid))
    return _plan(resource.status, status, draft, now, inputs.settings)


def _invalid_spec(
    status: api_status.FaissIndexStatus,
    message: str,
    now: datetime.datetime,
    generation: int,
    *,
    before: Sequence[api_status.Condition] = (),
    reason: str = conditions.INVALID_SPEC,
) -> api_status.FaissIndexStatus:
    """`status` saying, in Stalled and Degraded, that the spec cannot be acted on; the
    lastTransitionTime of those conditions moves only against `before` (the stored ones)."""
    values: list[tuple[str, api_status.ConditionStatus]] = [
        (conditions.STALLED, conditions.TRUE),
        (conditions.DEGRADED, conditions.TRUE),
        (conditions.RECONCILING, conditions.FALSE),
    ]
    overlaid = {type_ for type_, _ in values}
    # What the spec's revision measures is unknown while the spec is invalid: kept as it was.
    kept = {conditions.INDEX_BUILT, conditions.RECALL_TARGET_MET, conditions.LATENCY_TARGET_MET}
    kept = {c.type for c in before if c.type in kept}
    found = [c for c in status.conditions if c.type not in overlaid | kept]
    found += [c for c in before if c.type in overlaid | kept]
    for type_, value in values:
        found = conditions.set_condition(
            found,
            type_=type_,
            status=value,
            reason=reason,
            message=message,
            now=now,
            generation=generation,
        )
    if conditions.get(found, conditions.READY) is None:
        found = conditions.set_condition(
            found,
            type_=conditions.READY,
            status=conditions.FALSE,
            reason=conditions.NO_SERVING_REVISION,
            message="no revision serves yet",
            now=now,
            generation=generation,
        )
    return status.model_copy(
        update={"observed_generation": generation, "conditions": found, "phase": status_view.phase(found)}
    )


def _refuse(
    resource: api_resource.Resource, message: str, now: datetime.datetime, *, reason: str = conditions.INVALID_SPEC
) -> plan_actions.Plan:
    """Leave everything that serves untouched; say why in Stalled and Degraded. Admin annotations
    are recorded and removed with a Warning Event: acting on them needs a spec to act with."""
    old = resource.status
    draft = state.draft_from(old)
    draft.events.clear()  # repairs are reported once the spec can be acted on
    why = "the spec is invalid" if reason == conditions.INVALID_SPEC else "the source cannot be read"
    admin.refuse_all(resource, draft, f"{why} ({message})")
    status = _invalid_spec(old, message, now, resource.generation, before=old.conditions, reason=reason).model_copy(
        update={"handled_annotations": draft.handled}
    )
    events = list(draft.events)
    if status.conditions != old.conditions:
        events.insert(0, plan_actions.Event("Warning", reason, message))
    changed = status != old
    patch = patches.merge_patch(old.to_wire(), status.to_wire()) if changed else {}
    removing = any(isinstance(a, plan_actions.RemoveAnnotation) for a in draft.actions)
    return plan_actions.Plan(
        actions=tuple(draft.actions),
        status=status,
        status_changed=changed,
        status_patch=patch,
        events=tuple(events),
        requeue_after=float(ANNOTATION_RECHECK_SECONDS) if removing else None,
    )


def _deletion(
    resource: api_resource.Resource, children: observed.Children, settings: operator_settings.OperatorSettings
) -> plan_actions.Plan:
    """Stop serving, delete the children, remove the artifacts, then let the object go."""
    actions: list[plan_actions.Action] = list(_child_deletions(children))
    actions.extend(plan_actions.Apply(job) for _, job in _cleanup_jobs(resource, settings))
    if api_resource.FINALIZER in resource.finalizers:
        actions.append(plan_actions.RemoveFinalizer(api_resource.FINALIZER))
    return plan_actions.Plan(actions=tuple(actions), status=resource.status, status_changed=False)


def _namespace_terminating(
    resource: api_resource.Resource, children: observed.Children, settings: operator_settings.OperatorSettings
) -> plan_actions.Plan:
    """The namespace is being deleted: it accepts no new object (no child, no cleanup Job, no
    Event on the FaissIndex) and deletes everything in it, pods first, then the rest. Whether or
    not the FaissIndex is marked deleted yet, delete its own children (allowed), say which
    artifacts stay where they are, and release the finalizer at once, so that the namespace's
    deletion never waits for the operator (nolar/kopf#1088)."""
    actions: list[plan_actions.Action] = list(_child_deletions(children))
    events: list[plan_actions.Event] = []
    if api_resource.FINALIZER in resource.finalizers:
        actions.append(plan_actions.RemoveFinalizer(api_resource.FINALIZER))
        left = [_left_behind(entry.artifact, job["metadata"]["name"]) for entry, job in _cleanup_jobs(resource, settings)]
        if left:
            message = (
                f"namespace {resource.namespace} is being deleted and accepts no new objects, "
                f"the finalizer of FaissIndex {resource.name} was released without its cleanup: {'; '.join(left)}"
            )
        else:
            message = (
                f"namespace {resource.namespace} is being deleted: the finalizer of FaissIndex {resource.name} "
                "was released, it had no artifacts to remove"
            )
        events.append(plan_actions.Event("Warning" if left else "Normal", NAMESPACE_TERMINATING, message))
    return plan_actions.Plan(actions=tuple(actions), status=resource.status, status_changed=False, events=tuple(events))


def _left_behind(artifact: str, job: str) -> str:
    """What stays of `artifact` when its cleanup Job `job` cannot be created."""
    if storage.is_object_store(artifact):
        return f"Job {job} was not created, the objects under {artifact} stay in the object store"
    location = storage.parse_pvc(artifact)
    return (
        f"Job {job} was not created, the artifact files it would remove stay on their claim {location.claim} "
        f"under /{location.path} (they go with the claim if it is deleted too)"
    )


def _child_deletions(children: observed.Children) -> list[plan_actions.Delete]:
    """Delete every child: the Deployments first (stop serving), then Jobs, Services, budgets."""
    return [
        *(plan_actions.Delete("apps/v1", "Deployment", d.name) for d in children.deployments),
        *(plan_actions.Delete("batch/v1", "Job", j.name) for j in children.jobs),
        *(plan_actions.Delete("v1", "Service", s.name) for s in children.services),
        *(plan_actions.Delete("policy/v1", "PodDisruptionBudget", b.name) for b in children.disruption_budgets),
    ]


def _cleanup_jobs(
    resource: api_resource.Resource, settings: operator_settings.OperatorSettings
) -> list[tuple[api_status.RevisionStatus, dict[str, Any]]]:
    """The cleanup Job of each artifact in the history (once per artifact), with its revision."""
    jobs: list[tuple[api_status.RevisionStatus, dict[str, Any]]] = []
    removed: set[str] = set()
    try:  # the cleanup Jobs take the build's pod settings; a spec that does not parse, the defaults
        build_settings: api_spec.BuildSpec | None = api_resource.parse_spec(resource.spec).build
    except api_resource.SpecError:
        build_settings = None
    for entry in resource.status.revisions:
        if entry.artifact_key in removed:
            continue
        removed.add(entry.artifact_key)
        try:
            jobs.append((entry, manifests.cleanup_job(
                resource,
                target=entry.artifact,
                key=entry.artifact_key,
                image=settings.image,
                ttl_seconds=settings.cleanup_ttl_seconds,
                settings=build_settings,
                object_store=object_store.resolve(object_store.of_raw_spec(resource.spec), settings.object_store),
            )))  # fmt: skip
        except storage.StorageError:
            continue
    return jobs


def _plan(
    old: api_status.FaissIndexStatus,
    new: api_status.FaissIndexStatus,
    draft: state.Draft,
    now: datetime.datetime,
    settings: operator_settings.OperatorSettings,
) -> plan_actions.Plan:
    events = list(draft.events)
    before = {e.name: e for e in old.revisions}
    for entry in reversed(new.revisions):
        previous = before.get(entry.name)
        if previous is None or previous.state != entry.state:
            kind: Literal["Normal", "Warning"] = "Warning" if entry.state in ("Failed", "RolledBack") else "Normal"
            detail = f": {entry.message}" if entry.message else ""
            events.append(
                plan_actions.Event(kind, f"Revision{entry.state}", f"revision {entry.name} is {entry.state}{detail}")
            )
    for name in draft.pruned:
        events.append(plan_actions.Event("Normal", state.REASON_PRUNED, f"revision {name} removed from history"))
    if new.phase != old.phase:
        events.append(plan_actions.Event("Normal", f"Phase{new.phase}", f"phase {old.phase} -> {new.phase}"))
    if any(isinstance(a, plan_actions.RemoveAnnotation) for a in draft.actions):
        # The record of an annotation goes once its removal has landed: look again for that.
        draft.wake_at.append(now + datetime.timedelta(seconds=ANNOTATION_RECHECK_SECONDS))
    requeue = None
    if draft.wake_at:
        requeue = max(0.0, (min(draft.wake_at) - now).total_seconds())
    return plan_actions.Plan(
        actions=tuple(draft.actions),
        status=new,
        status_changed=new != old,
        status_patch=patches.merge_patch(old.to_wire(), new.to_wire()) if new != old else {},
        events=tuple(events),
        requeue_after=requeue,
    )
