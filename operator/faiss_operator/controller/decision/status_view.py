"""The status derived from a decided draft: phase, conditions, served recall and latency.

Derived in a fixed order after every step ran, never set along the way, so the status always
agrees with the revisions it describes.
"""

from __future__ import annotations

from faiss_operator.api import status as api_status
from faiss_operator.controller.decision import canary, conditions, keep_serving, memory_kills, modes, pod_problems, state
from faiss_operator.controller.decision import rollout
from faiss_operator.controller.decision import claims


def phase(found: list[api_status.Condition]) -> api_status.Phase:
    """The phase, read from the conditions only, so `kubectl get` (phase) and `kubectl wait`
    (conditions) never disagree: a rollout in progress names its kind (Progressing's reason);
    otherwise Stalled True (the spec's revision cannot go on without a change of spec or an
    admin) is Degraded while an older revision still serves (Ready True; Argo Rollouts' phase
    after an aborted update) and Failed when nothing serves; Ready True is Ready, a serving
    revision with no ready replica is Degraded, and an index that never served is Pending."""
    c = conditions

    def is_true(type_: str) -> api_status.Condition | None:
        found_condition = c.get(found, type_)
        return found_condition if found_condition is not None and found_condition.status == c.TRUE else None

    progressing = is_true(c.PROGRESSING)
    if progressing is not None:
        return _PHASE_OF_PROGRESS.get(progressing.reason, "Progressing")
    if is_true(c.STALLED) is not None:
        return "Degraded" if is_true(c.READY) is not None else "Failed"
    if is_true(c.READY) is not None:
        return "Ready"
    ready = c.get(found, c.READY)
    if ready is not None and ready.reason == c.NOT_SERVING:
        return "Degraded"
    return "Pending"


_PHASE_OF_PROGRESS: dict[str, api_status.Phase] = {
    conditions.BUILDING: "Building",
    conditions.DEPLOYING: "Deploying",
    conditions.ROLLING_BACK: "RollingBack",
}


def finish(inputs: state.Inputs, draft: state.Draft) -> api_status.FaissIndexStatus:
    now, generation = inputs.now, inputs.resource.generation
    current = draft.entry(draft.current)
    wire = modes.to_wire(draft.mode)
    if wire is not None and draft.candidate is not None:
        # Traffic splits by ready replicas over one Service: every other revision that still
        # serves (the stable, and any in its scale-down delay) shares it with the candidate.
        others = {draft.current, *(s.revision for s in draft.scale_downs)} - {draft.candidate, None}
        stable_ready = sum(inputs.children.ready_replicas(name) for name in others if name is not None)
        wire = wire.model_copy(
            update={
                "actual_weight": canary.actual_weight(
                    candidate_ready=inputs.children.ready_replicas(draft.candidate), stable_ready=stable_ready
                )
            }
        )
    found = list(inputs.resource.status.conditions)
    for type_, status, reason, message in _conditions(inputs, draft):
        found = conditions.set_condition(
            found, type_=type_, status=status, reason=reason, message=message, now=now, generation=generation
        )
    return api_status.FaissIndexStatus(
        observed_generation=generation,
        phase=phase(found),
        index_type=inputs.desired.index_type,
        current_revision=draft.current,
        candidate_revision=draft.candidate,
        rollout=wire,
        recall=current.metrics.recall if current and current.metrics else None,
        p99_latency_ms=current.metrics.p99_latency_ms if current and current.metrics else None,
        revisions=draft.revisions,
        scale_downs=draft.scale_downs,
        conditions=found,
        handled_annotations=draft.handled,
    )


_ConditionValue = tuple[str, api_status.ConditionStatus, str, str]


def _conditions(inputs: state.Inputs, draft: state.Draft) -> list[_ConditionValue]:
    c = conditions
    values: list[_ConditionValue] = []
    ready_current = inputs.children.ready_replicas(draft.current) if draft.current else 0
    if draft.current is not None and ready_current > 0:
        values.append(
            (c.READY, "True", c.SERVING, f"revision {draft.current} serves {ready_current}/{inputs.total} replicas")
        )
    elif draft.current is not None:
        values.append((c.READY, "False", c.NOT_SERVING, f"revision {draft.current} has no ready replica"))
    else:
        values.append((c.READY, "False", c.NO_SERVING_REVISION, "no revision serves yet"))

    progress = _with_missing_pods(inputs, draft, _progress(inputs, draft))
    problem = claims.problem(inputs) or _desired_problem(inputs, draft)
    if progress is not None:
        values.append((c.PROGRESSING, "True", *progress))
    else:
        values.append((c.PROGRESSING, "False", c.IDLE, "no rollout in progress"))
    # kstatus reads Reconciling True as InProgress even when Stalled is True: never both.
    if problem is not None:
        values.append((c.RECONCILING, "False", problem[0], "stalled: waiting for a change of spec or an admin"))
    elif progress is not None:
        values.append((c.RECONCILING, "True", *progress))
    else:
        values.append((c.RECONCILING, "False", c.IDLE, "no rollout in progress"))

    desired = draft.entry(inputs.desired.name)
    if problem is not None:
        values.append((c.STALLED, "True", *problem))
    else:
        values.append((c.STALLED, "False", c.AS_EXPECTED, "nothing needs a change of spec"))
    held = keep_serving.held(inputs, draft, rollout.serving_replicas(inputs, draft))
    kills = memory_kills.serving_kills(inputs.children.serving_pods)
    if problem is not None and held:
        values.append((c.DEGRADED, "True", problem[0], f"{problem[1]}; {keep_serving.message(held)}"))
    elif problem is not None:
        values.append((c.DEGRADED, "True", *problem))
    elif held:
        values.append((c.DEGRADED, "True", c.KEPT_SERVING, keep_serving.message(held)))
    elif kills:
        limits = inputs.spec.serving.resources.limits if inputs.spec.serving.resources else None
        message = memory_kills.serving_message(kills, limit=(limits or {}).get("memory"))
        values.append((c.DEGRADED, "True", c.SERVING_OOM_KILLED, message))
    elif draft.current is not None and ready_current < inputs.total:
        why = pod_problems.why_missing(inputs.children, draft.current)
        values.append(
            (
                c.DEGRADED,
                "True",
                c.REPLICAS_UNAVAILABLE,
                f"{ready_current}/{inputs.total} replicas of {draft.current} ready" + (f": {why}" if why else ""),
            )
        )
    else:
        values.append((c.DEGRADED, "False", c.AS_EXPECTED, "all is as expected"))

    metrics = desired.metrics if desired is not None else None
    if desired is None or desired.state == "Building":
        values.append((c.INDEX_BUILT, "False", c.BUILDING, f"revision {inputs.desired.name} is being built"))
    elif metrics is None:
        values.append(
            (c.INDEX_BUILT, "False", c.BUILD_FAILED, f"revision {desired.name}: {desired.message or desired.reason}")
        )
    elif desired.reused_from:
        values.append(
            (
                c.INDEX_BUILT,
                "True",
                c.ARTIFACT_REUSED,
                f"revision {desired.name} serves the artifact of {desired.reused_from}",
            )
        )
    else:
        values.append((c.INDEX_BUILT, "True", c.BUILT, f"revision {desired.name}: {metrics.vectors} vectors"))
    values.append(
        _target(
            c.RECALL_TARGET_MET,
            metrics.recall if metrics else None,
            inputs.spec.evaluation.min_recall,
            minimum=True,
            label=f"recall@{inputs.spec.evaluation.k}",
        )
    )
    values.append(
        _target(
            c.LATENCY_TARGET_MET,
            metrics.p99_latency_ms if metrics else None,
            inputs.spec.evaluation.max_p99_latency_ms,
            minimum=False,
            label="p99 ms",
        )
    )
    return values


def _target(type_: str, value: float | None, limit: float | None, *, minimum: bool, label: str) -> _ConditionValue:
    c = conditions
    if limit is None:
        return (type_, "True", c.NO_TARGET, "no target set")
    if value is None:
        return (type_, "Unknown", c.NOT_MEASURED, f"{label} not measured yet")
    if (value >= limit) if minimum else (value <= limit):
        return (
            type_,
            "True",
            c.ABOVE_THRESHOLD if minimum else c.WITHIN_LIMIT,
            f"{label} {value:.3f} {'>=' if minimum else '<='} {limit}",
        )
    return (
        type_,
        "False",
        c.BELOW_THRESHOLD if minimum else c.ABOVE_LIMIT,
        f"{label} {value:.3f} {'<' if minimum else '>'} {limit}",
    )


def _progress(inputs: state.Inputs, draft: state.Draft) -> tuple[str, str] | None:
    c = conditions
    candidate = draft.entry(draft.candidate)
    if candidate is None:
        return None
    mode = draft.mode
    if candidate.state == "Building":
        return (c.BUILDING, f"building revision {candidate.name}")
    match mode:
        case None | modes.Deploying() | modes.Paused(of=modes.Deploying()):
            return (c.DEPLOYING, f"deploying revision {candidate.name}")
        case modes.RollingBack() | modes.Paused(of=modes.RollingBack()):
            return (c.ROLLING_BACK, f"rolling back to revision {candidate.name}")
        case modes.Paused(of=modes.Stepping(weight=weight) | modes.Promoting(at=modes.Stepping(weight=weight))):
            return (c.PAUSED, f"paused at {weight}% on {candidate.name}: {pause_text(mode)}")
        case modes.AwaitingPromotion(at=at):
            return (c.PAUSED, f"paused at {at.weight}% on {candidate.name}: {pause_text(mode)}")
        case modes.Promoting():
            return (c.PROMOTING, f"promoting revision {candidate.name} to all replicas")
        case modes.Stepping(step=step, weight=weight):
            total_steps = len(canary.steps(inputs.spec.rollout))
            return (c.CANARY_STEP, f"step {step + 1}/{total_steps}: {weight}% on {candidate.name}")
    return None


def _with_missing_pods(
    inputs: state.Inputs, draft: state.Draft, progress: tuple[str, str] | None
) -> tuple[str, str] | None:
    """Progressing's message, naming why the candidate's pods are missing when fewer are ready
    than the rollout wants (a quota, PodSecurity, an image pull, no node)."""
    if progress is None or draft.candidate is None:
        return progress
    wanted = rollout.serving_replicas(inputs, draft).get(draft.candidate, 0)
    ready = inputs.children.ready_replicas(draft.candidate)
    why = pod_problems.why_missing(inputs.children, draft.candidate) if ready < wanted else None
    if why is None:
        return progress
    return (progress[0], f"{progress[1]}; {ready}/{wanted} replicas of {draft.candidate} ready: {why}")


def pause_text(mode: modes.Mode) -> str:
    """What a paused rollout waits for, in words."""
    if isinstance(mode, modes.AwaitingPromotion):
        return state.PAUSE_MESSAGES[state.PAUSE_AWAITING_PROMOTION]
    if not isinstance(mode, modes.Paused):
        return "paused"
    if mode.message:
        return mode.message
    if mode.reason is not None:
        return state.PAUSE_MESSAGES.get(mode.reason, mode.reason)
    return "paused"


def _desired_problem(inputs: state.Inputs, draft: state.Draft) -> tuple[str, str] | None:
    c = conditions
    mode = draft.mode
    if isinstance(mode, modes.Paused) and mode.reason == state.PAUSE_FAILURE:
        if isinstance(mode.of, modes.RollingBack):
            return (
                c.ROLLBACK_STALLED,
                f"{pause_text(mode)}; annotate faiss.dev/abort=true to cancel the rollback "
                "or faiss.dev/rollback to pick another revision",
            )
        return (c.ROLLOUT_PAUSED_ON_FAILURE, f"{pause_text(mode)}; annotate faiss.dev/promote, abort or rollback")
    desired = draft.entry(inputs.desired.name)
    if desired is None or desired.name == draft.current:
        return None
    hint = "change the spec or annotate faiss.dev/retry=true"
    if desired.state == "Failed":
        return (c.REVISION_FAILED, f"revision {desired.name} failed ({desired.reason}): {desired.message}; {hint}")
    if desired.state == "RolledBack":
        return (
            c.REVISION_ROLLED_BACK,
            f"revision {desired.name} was rolled back ({desired.reason}): {desired.message}; {hint}",
        )
    return None
