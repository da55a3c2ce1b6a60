"""The state machine: one pure function from observed state to actions and a new status.

`decide(resource, children, measurements, now, settings=...)` reads the FaissIndex (spec,
status, annotations), its child objects, the latest live measurements and the time, and returns
a `Plan`. It never performs I/O nor reads a clock, so the same inputs always give the same plan
and a restart at any moment continues where the previous run stopped.

The steps run in a fixed order, each returning early while its part is unfinished (after Argo
Rollouts' canary reconciler): adopt the spec's revision, act on admin annotations, build, gates,
rollout, scale-downs, history, children; then conditions and phase are derived from the result.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Sequence
from typing import Literal

from faiss_operator.api import resource as api_resource
from faiss_operator.api import spec as api_spec
from faiss_operator.api import status as api_status
from faiss_operator.controller import actions as plan_actions
from faiss_operator.controller import analysis, canary, children as observed, conditions, manifests, report
from faiss_operator.controller import revisions, storage
from faiss_operator.controller import settings as operator_settings
from faiss_operator.index import config as index_config
from faiss_operator.api import naming

# Reasons recorded on revisions (status.revisions[].reason) and used in Events.
REASON_SUPERSEDED = "Superseded"
REASON_REVERTED = "Reverted"
REASON_REUSED = "ArtifactReused"
REASON_BUILD_FAILED = "BuildFailed"
REASON_BAD_REPORT = "BadReport"
REASON_GATES_NOT_MET = "GatesNotMet"
REASON_ANALYSIS_FAILED = "AnalysisFailed"
REASON_PROGRESS_DEADLINE = "ProgressDeadlineExceeded"
REASON_ABORTED = "Aborted"
REASON_ROLLBACK_REQUESTED = "RollbackRequested"
REASON_RETRIED = "Retried"
REASON_SPEC_PAUSED = "SpecPaused"
REASON_AWAITING_PROMOTION = "AwaitingPromotion"
REASON_ANNOTATION_IGNORED = "AnnotationIgnored"
REASON_STATUS_REPAIRED = "StatusRepaired"
REASON_PRUNED = "RevisionPruned"

PAUSE_AWAITING_PROMOTION = "step without pauseSeconds: annotate faiss.dev/promote=true to continue"
PAUSE_SPEC = "spec.paused is true"


@dataclasses.dataclass(frozen=True)
class _Inputs:
    resource: api_resource.Resource
    spec: api_spec.FaissIndexSpec
    desired: revisions.DesiredRevision
    children: observed.Children
    measurements: Sequence[analysis.Measurement]
    now: datetime.datetime
    settings: operator_settings.OperatorSettings

    @property
    def total(self) -> int:
        return self.spec.serving.replicas

    def after(self, seconds: float) -> datetime.datetime:
        return self.now + datetime.timedelta(seconds=seconds)


@dataclasses.dataclass
class _Draft:
    """The status being decided, and what to do; mutable only inside one `decide` call."""

    revisions: list[api_status.RevisionStatus]
    current: str | None
    candidate: str | None
    rollout: api_status.RolloutStatus | None
    scale_downs: list[api_status.ScaleDown]
    actions: list[plan_actions.Action] = dataclasses.field(default_factory=list)
    events: list[plan_actions.Event] = dataclasses.field(default_factory=list)
    wake_at: list[datetime.datetime] = dataclasses.field(default_factory=list)
    pruned: list[str] = dataclasses.field(default_factory=list)

    def entry(self, name: str | None) -> api_status.RevisionStatus | None:
        return next((e for e in self.revisions if e.name == name), None)

    def update(self, name: str, **changes: object) -> api_status.RevisionStatus:
        for position, entry in enumerate(self.revisions):
            if entry.name == name:
                self.revisions[position] = entry.model_copy(update=changes)
                return self.revisions[position]
        raise KeyError(name)

    def update_rollout(self, **changes: object) -> None:
        assert self.rollout is not None
        self.rollout = self.rollout.model_copy(update=changes)

    def warn(self, reason: str, message: str) -> None:
        self.events.append(plan_actions.Event("Warning", reason, message))


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
    if resource.deletion_timestamp is not None:
        return _deletion(resource, children, settings)
    try:
        spec = api_resource.parse_spec(resource.spec)
        desired = revisions.desired_revision(spec, settings)
    except api_resource.SpecError as error:
        return _refuse(resource, children, str(error), now)
    inputs = _Inputs(resource, spec, desired, children, measurements, now, settings)
    draft = _draft_from(resource.status)
    if api_resource.FINALIZER not in resource.finalizers:
        draft.actions.append(plan_actions.AddFinalizer(api_resource.FINALIZER))
    _adopt_desired(inputs, draft)
    _handle_annotations(inputs, draft)
    _reconcile_build(inputs, draft)
    _reconcile_gates(inputs, draft)
    _reconcile_rollout(inputs, draft)
    _expire_scale_downs(inputs, draft)
    _collect_garbage(inputs, draft)
    _sync_children(inputs, draft)
    status = _finish(inputs, draft)
    return _plan(resource.status, status, draft, now, inputs.settings)


# --- the steps ------------------------------------------------------------------------------


def _draft_from(status: api_status.FaissIndexStatus) -> _Draft:
    draft = _Draft(
        revisions=list(status.revisions),
        current=status.current_revision,
        candidate=status.candidate_revision,
        rollout=status.rollout,
        scale_downs=list(status.scale_downs),
    )
    # A status that contradicts itself (hand-edited, or written by an older operator) is repaired
    # towards "nothing in flight" rather than trusted: the serving revision is kept when known.
    if draft.current is not None and draft.entry(draft.current) is None:
        draft.warn(REASON_STATUS_REPAIRED, f"status.currentRevision {draft.current} is not in status.revisions; ignored")
        draft.current = None
    if draft.candidate is not None and (draft.entry(draft.candidate) is None or draft.candidate == draft.current):
        draft.warn(REASON_STATUS_REPAIRED, f"status.candidateRevision {draft.candidate} is not a pending revision; ignored")
        draft.candidate = None
    if draft.candidate is None:
        draft.rollout = None
    draft.scale_downs = [s for s in draft.scale_downs if draft.entry(s.revision) is not None]
    return draft


def _has_artifact(entry: api_status.RevisionStatus) -> bool:
    """A revision's files exist once it was built (or reuses built files): it then has metrics."""
    return entry.metrics is not None


def _end_candidate(draft: _Draft, *, state: api_status.RevisionState, reason: str, message: str) -> None:
    assert draft.candidate is not None
    draft.update(draft.candidate, state=state, reason=reason, message=message)
    draft.candidate = None
    draft.rollout = None


def _adopt_desired(inputs: _Inputs, draft: _Draft) -> None:
    """Make the spec's revision the candidate: new, reverted to, or held because it failed."""
    name = inputs.desired.name
    entry = draft.entry(name)
    in_rollback = draft.rollout is not None and draft.rollout.mode == "Rollback"
    if name == draft.current:
        if draft.candidate is not None and not in_rollback:
            _end_candidate(draft, state="Retired", reason=REASON_SUPERSEDED, message=f"the spec returned to {name}")
        return
    if name == draft.candidate or in_rollback:
        return
    if entry is not None and entry.state in ("Failed", "RolledBack"):
        if draft.candidate is not None:
            _end_candidate(draft, state="Retired", reason=REASON_SUPERSEDED, message=f"superseded by {name}")
        return
    if draft.candidate is not None:
        _end_candidate(draft, state="Retired", reason=REASON_SUPERSEDED, message=f"superseded by {name}")
    if entry is not None and _has_artifact(entry):
        draft.update(name, state="Built", reason=REASON_REVERTED, message="the spec returned to this revision")
        draft.candidate = name
        return
    if entry is not None:  # known but never built (superseded while building): build it now
        draft.update(name, state="Building", reason=None, message=None, build_attempt=entry.build_attempt + 1)
        draft.candidate = name
        return
    desired = inputs.desired
    donor = next((e for e in draft.revisions if e.artifact_key == desired.artifact_key and _has_artifact(e)), None)
    artifact = storage.artifact_uri(inputs.spec.artifacts.uri, inputs.resource.name, desired.artifact_key)
    draft.revisions.insert(
        0,
        api_status.RevisionStatus(
            name=name,
            index_type=desired.index_type,
            config=desired.wire_config,
            artifact=artifact,
            artifact_key=desired.artifact_key,
            state="Built" if donor is not None else "Building",
            reason=REASON_REUSED if donor is not None else None,
            message=f"search-time parameters changed; serves the artifact built for {donor.name}" if donor else None,
            metrics=_reused_metrics(donor.metrics) if donor is not None and donor.metrics else None,
            reused_from=donor.name if donor is not None else None,
            created_at=inputs.now,
        ),
    )
    draft.candidate = name


def _reused_metrics(metrics: api_status.RevisionMetrics) -> api_status.RevisionMetrics:
    """What still holds for other search-time parameters: size and build cost, not recall/latency."""
    return api_status.RevisionMetrics(
        vectors=metrics.vectors, memory_bytes=metrics.memory_bytes, build_seconds=metrics.build_seconds
    )


def _handle_annotations(inputs: _Inputs, draft: _Draft) -> None:
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


def _abort(inputs: _Inputs, draft: _Draft, value: str) -> None:
    if value.lower() != "true":
        draft.warn(REASON_ANNOTATION_IGNORED, f"{api_resource.ANNOTATION_ABORT}: expected \"true\", got {value!r}")
        return
    entry = draft.entry(draft.candidate)
    if entry is None or (draft.rollout is not None and draft.rollout.mode == "Rollback"):
        draft.warn(REASON_ANNOTATION_IGNORED, f"{api_resource.ANNOTATION_ABORT}: no rollout in progress")
        return
    state: api_status.RevisionState = "Failed" if entry.state == "Building" else "RolledBack"
    _end_candidate(draft, state=state, reason=REASON_ABORTED, message="aborted by faiss.dev/abort")


def _rollback(inputs: _Inputs, draft: _Draft, value: str) -> None:
    key = api_resource.ANNOTATION_ROLLBACK
    if draft.current is None:
        draft.warn(REASON_ANNOTATION_IGNORED, f"{key}: no revision serves yet, nothing to roll back from")
        return
    in_canary = draft.candidate is not None and (draft.rollout is None or draft.rollout.mode != "Rollback")
    if in_canary and value in (api_resource.ROLLBACK_PREVIOUS, draft.current):
        _end_candidate(draft, state="RolledBack", reason=REASON_ROLLBACK_REQUESTED, message=f"rolled back by {key}")
        return
    if value == api_resource.ROLLBACK_PREVIOUS:
        target = next(
            (e for e in draft.revisions if e.name != draft.current and e.state == "Retired" and _has_artifact(e)), None
        )
        if target is None:
            draft.warn(REASON_ANNOTATION_IGNORED, f"{key}: no previous revision with a retained artifact")
            return
    else:
        target = draft.entry(value)
        if target is None or target.name == draft.current or not _has_artifact(target):
            known = ", ".join(e.name for e in draft.revisions if e.name != draft.current and _has_artifact(e))
            draft.warn(
                REASON_ANNOTATION_IGNORED,
                f"{key}: {value!r} is not a retained revision to roll back to; candidates: {known or 'none'}",
            )
            return
    if draft.candidate is not None:
        _end_candidate(draft, state="RolledBack", reason=REASON_ROLLBACK_REQUESTED, message=f"rolled back by {key}")
    draft.update(target.name, state="Built", reason=REASON_ROLLBACK_REQUESTED, message=f"rollback target of {key}")
    draft.candidate = target.name
    draft.rollout = api_status.RolloutStatus(mode="Rollback", weight=100, step_started_at=inputs.now)


def _retry(inputs: _Inputs, draft: _Draft, value: str) -> None:
    name = inputs.desired.name
    entry = draft.entry(name)
    if entry is None or entry.state not in ("Failed", "RolledBack") or name == draft.current:
        draft.warn(REASON_ANNOTATION_IGNORED, f"{api_resource.ANNOTATION_RETRY}: revision {name} has not failed")
        return
    if draft.candidate is not None:
        _end_candidate(draft, state="Retired", reason=REASON_SUPERSEDED, message=f"superseded by the retry of {name}")
    if _has_artifact(entry):
        draft.update(name, state="Built", reason=REASON_RETRIED, message=None)
    else:
        draft.update(name, state="Building", reason=REASON_RETRIED, message=None, build_attempt=entry.build_attempt + 1)
    draft.candidate = name
    draft.rollout = None


def _promote_request(inputs: _Inputs, draft: _Draft, value: str) -> None:
    if value.lower() != "true":
        draft.warn(REASON_ANNOTATION_IGNORED, f"{api_resource.ANNOTATION_PROMOTE}: expected \"true\", got {value!r}")
        return
    if draft.rollout is None or draft.rollout.mode != "Canary":
        draft.warn(REASON_ANNOTATION_IGNORED, f"{api_resource.ANNOTATION_PROMOTE}: no canary in progress")
        return
    draft.update_rollout(promoting=True, paused=False, pause_reason=None, step_started_at=inputs.now)


def _reconcile_build(inputs: _Inputs, draft: _Draft) -> None:
    entry = draft.entry(draft.candidate)
    if entry is None or entry.state != "Building":
        return
    name = manifests.job_name(inputs.resource.name, entry.name, entry.build_attempt)
    job = inputs.children.job(name)
    if job is None:
        desired = inputs.desired
        draft.actions.append(
            plan_actions.Apply(
                manifests.build_job(
                    inputs.resource,
                    inputs.spec,
                    revision=entry.name,
                    attempt=entry.build_attempt,
                    artifact=entry.artifact,
                    index_type=desired.index_type,
                    build_config=desired.build_config,
                    image=desired.builder_image,
                )
            )
        )
        return
    outcome = observed.job_outcome(job, inputs.children.build_pods(name))
    if isinstance(outcome, observed.JobRunning):
        return
    if isinstance(outcome, observed.JobFailed):
        _end_candidate(draft, state="Failed", reason=REASON_BUILD_FAILED, message=outcome.message)
        return
    try:
        built = report.parse_report(outcome.termination_message)
    except report.ReportError as error:
        _end_candidate(draft, state="Failed", reason=REASON_BAD_REPORT, message=str(error))
        return
    metrics = built.metrics()
    if metrics.k is None:
        metrics = metrics.model_copy(update={"k": inputs.spec.evaluation.k})
    draft.update(entry.name, state="Built", reason=None, message=None, metrics=metrics)


def _gate_failures(spec: api_spec.FaissIndexSpec, metrics: api_status.RevisionMetrics | None) -> list[str]:
    if metrics is None:
        return []
    failures = []
    evaluation = spec.evaluation
    if evaluation.min_recall is not None and metrics.recall is not None and metrics.recall < evaluation.min_recall:
        failures.append(f"recall@{metrics.k or evaluation.k} {metrics.recall:.3f} < minRecall {evaluation.min_recall}")
    limit = evaluation.max_p99_latency_ms
    if limit is not None and metrics.p99_latency_ms is not None and metrics.p99_latency_ms > limit:
        failures.append(f"p99 {metrics.p99_latency_ms:.3f} ms > maxP99LatencyMs {limit}")
    return failures


def _reconcile_gates(inputs: _Inputs, draft: _Draft) -> None:
    """Judge a built candidate by its build's evaluation, then start its rollout."""
    desired_entry = draft.entry(inputs.desired.name)
    if (
        draft.candidate is None
        and desired_entry is not None
        and desired_entry.state == "Failed"
        and desired_entry.reason == REASON_GATES_NOT_MET
        and not _gate_failures(inputs.spec, desired_entry.metrics)
    ):
        # The gates were lowered (which makes no new revision): the built revision now qualifies.
        draft.update(desired_entry.name, state="Built", reason=None, message=None)
        draft.candidate = desired_entry.name
    entry = draft.entry(draft.candidate)
    if entry is None or entry.state != "Built" or draft.rollout is not None:
        return
    failures = _gate_failures(inputs.spec, entry.metrics)
    if failures:
        _end_candidate(draft, state="Failed", reason=REASON_GATES_NOT_MET, message="; ".join(failures))
        return
    if draft.current is None:
        draft.rollout = api_status.RolloutStatus(mode="Deploy", weight=100, step_started_at=inputs.now)
        return
    first = canary.steps(inputs.spec.rollout)[0]
    draft.update(entry.name, state="Canary")
    draft.rollout = api_status.RolloutStatus(mode="Canary", step=0, weight=first.weight, step_started_at=inputs.now)


def _reconcile_rollout(inputs: _Inputs, draft: _Draft) -> None:
    rollout = draft.rollout
    if draft.candidate is None or rollout is None:
        return
    ready = inputs.children.ready_replicas(draft.candidate)
    deadline = rollout.step_started_at + datetime.timedelta(seconds=inputs.spec.rollout.progress_deadline_seconds)
    if rollout.mode == "Deploy":
        if ready >= inputs.total:
            _promote(inputs, draft)
        elif inputs.now >= deadline:
            message = f"{ready}/{inputs.total} replicas ready after {inputs.spec.rollout.progress_deadline_seconds}s"
            _end_candidate(draft, state="Failed", reason=REASON_PROGRESS_DEADLINE, message=message)
        else:
            draft.wake_at.append(deadline)
        return
    if rollout.mode == "Rollback":
        if ready >= inputs.total:
            previous = draft.current
            _promote(inputs, draft)
            if previous is not None:
                draft.update(previous, state="RolledBack", reason=REASON_ROLLBACK_REQUESTED, message="rolled back by faiss.dev/rollback")
        return
    _reconcile_canary(inputs, draft, ready)


def _reconcile_canary(inputs: _Inputs, draft: _Draft, ready: int) -> None:
    assert draft.rollout is not None and draft.candidate is not None
    spec = inputs.spec
    if spec.paused:
        if not draft.rollout.paused:
            draft.update_rollout(paused=True, pause_reason=PAUSE_SPEC)
        return
    if draft.rollout.paused and draft.rollout.pause_reason == PAUSE_SPEC:
        draft.update_rollout(paused=False, pause_reason=None, step_started_at=inputs.now)
    rollout = draft.rollout
    if rollout.paused:
        return
    deadline = rollout.step_started_at + datetime.timedelta(seconds=spec.rollout.progress_deadline_seconds)
    if rollout.promoting:
        if ready >= inputs.total:
            _promote(inputs, draft)
        elif inputs.now >= deadline:
            _fail_rollout(inputs, draft, REASON_PROGRESS_DEADLINE, f"{ready}/{inputs.total} replicas ready while promoting")
        else:
            draft.wake_at.append(deadline)
        return
    steps = canary.steps(spec.rollout)
    step = steps[min(rollout.step, len(steps) - 1)]
    wanted = canary.candidate_replicas(inputs.total, step.weight)
    if ready < wanted:
        if inputs.now >= deadline:
            message = f"step {rollout.step + 1}: {ready}/{wanted} candidate replicas ready"
            _fail_rollout(inputs, draft, REASON_PROGRESS_DEADLINE, message)
        else:
            draft.wake_at.append(deadline)
        return
    if rollout.step_ready_at is None:
        draft.update_rollout(step_ready_at=inputs.now)
    if not draft.rollout.analysis_passed and not _analyse(inputs, draft):
        if draft.rollout is not None and not draft.rollout.paused:
            if inputs.now >= deadline:
                _fail_rollout(inputs, draft, REASON_PROGRESS_DEADLINE, f"step {rollout.step + 1}: analysis inconclusive")
            else:
                draft.wake_at.append(deadline)
        return
    rollout = draft.rollout
    assert rollout.step_ready_at is not None
    if step.pause_seconds is None:
        draft.update_rollout(paused=True, pause_reason=PAUSE_AWAITING_PROMOTION)
        return
    resume = rollout.step_ready_at + datetime.timedelta(seconds=step.pause_seconds)
    if inputs.now < resume:
        draft.wake_at.append(resume)
        return
    if rollout.step + 1 < len(steps):
        following = steps[rollout.step + 1]
        draft.rollout = api_status.RolloutStatus(
            mode="Canary", step=rollout.step + 1, weight=following.weight, step_started_at=inputs.now
        )
    else:
        draft.update_rollout(promoting=True, step_started_at=inputs.now)
    _reconcile_canary(inputs, draft, ready)


def _analyse(inputs: _Inputs, draft: _Draft) -> bool:
    """Judge the newest fresh measurement of this step; True once the step's analysis passed."""
    rollout = draft.rollout
    assert rollout is not None and draft.candidate is not None and rollout.step_ready_at is not None
    fresh = [
        m
        for m in inputs.measurements
        if m.revision == draft.candidate
        and m.step == rollout.step
        and m.taken_at >= rollout.step_ready_at
        and (rollout.last_analysis_at is None or m.taken_at > rollout.last_analysis_at)
    ]
    if fresh:
        latest = max(fresh, key=lambda m: m.taken_at)
        result = analysis.judge(latest, analysis.thresholds(inputs.spec))
        draft.update_rollout(last_analysis_at=latest.taken_at.replace(microsecond=0))
        if result.verdict == analysis.PASS:
            draft.update_rollout(analysis_passed=True)
            _record_live_metrics(draft, latest)
            return True
        if result.verdict == analysis.FAIL:
            failures = rollout.analysis_failures + 1
            draft.update_rollout(analysis_failures=failures)
            if failures > inputs.spec.rollout.analysis.failure_limit:
                _fail_rollout(inputs, draft, REASON_ANALYSIS_FAILED, f"step {rollout.step + 1}: {result.message}")
                return False
            draft.warn(REASON_ANALYSIS_FAILED, f"step {rollout.step + 1}: {result.message} (failure {failures})")
    entry = draft.entry(draft.candidate)
    assert entry is not None and draft.current is not None
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


def _record_live_metrics(draft: _Draft, measurement: analysis.Measurement) -> None:
    """A revision that reuses an artifact has no build-time recall: its live one fills the gap."""
    entry = draft.entry(measurement.revision)
    if entry is None or entry.metrics is None or entry.metrics.recall is not None:
        return
    probe = measurement.candidate
    draft.update(
        entry.name,
        metrics=entry.metrics.model_copy(
            update={"recall": probe.recall, "p50_latency_ms": probe.p50_latency_ms, "p99_latency_ms": probe.p99_latency_ms}
        ),
    )


def _fail_rollout(inputs: _Inputs, draft: _Draft, reason: str, message: str) -> None:
    rollout_spec = inputs.spec.rollout
    if rollout_spec.auto_rollback:
        _end_candidate(draft, state="RolledBack", reason=reason, message=message)
    elif rollout_spec.on_failure == "Pause":
        draft.update_rollout(paused=True, pause_reason=f"{reason}: {message}")
    else:
        _end_candidate(draft, state="Failed", reason=reason, message=message)


def _promote(inputs: _Inputs, draft: _Draft) -> None:
    """The candidate takes all traffic; the replaced revision keeps serving for the delay."""
    assert draft.candidate is not None
    previous = draft.current
    draft.update(draft.candidate, state="Active", reason=None, message=None)
    draft.current = draft.candidate
    draft.candidate = None
    draft.rollout = None
    draft.scale_downs = [s for s in draft.scale_downs if s.revision != draft.current]
    if previous is not None:
        draft.update(previous, state="Retired", reason=None, message=f"replaced by {draft.current}")
        delay = inputs.spec.rollout.scale_down_delay_seconds
        if delay > 0:
            draft.scale_downs.append(api_status.ScaleDown(revision=previous, after=inputs.after(delay)))


def _expire_scale_downs(inputs: _Inputs, draft: _Draft) -> None:
    keep = []
    for pending in draft.scale_downs:
        if pending.after > inputs.now and pending.revision not in (draft.current, draft.candidate):
            keep.append(pending)
            draft.wake_at.append(pending.after)
    draft.scale_downs = keep


def _collect_garbage(inputs: _Inputs, draft: _Draft) -> None:
    """Keep at most revisionHistoryLimit + 1 revisions; remove the files no kept revision uses."""
    protected = {draft.current, draft.candidate, inputs.desired.name, *(s.revision for s in draft.scale_downs)}
    limit = inputs.spec.rollout.revision_history_limit + 1
    others_allowed = max(0, limit - sum(1 for e in draft.revisions if e.name in protected))
    kept, removed = [], []
    for entry in draft.revisions:
        if entry.name in protected:
            kept.append(entry)
        elif others_allowed > 0:
            kept.append(entry)
            others_allowed -= 1
        else:
            removed.append(entry)
    draft.revisions = kept
    kept_keys = {e.artifact_key for e in kept}
    for entry in removed:
        draft.pruned.append(entry.name)
        if entry.artifact_key not in kept_keys and (_has_artifact(entry) or entry.state == "Building"):
            kept_keys.add(entry.artifact_key)
            draft.actions.append(
                plan_actions.Apply(
                    manifests.cleanup_job(
                        inputs.resource,
                        target=entry.artifact,
                        key=entry.artifact_key,
                        image=inputs.settings.image,
                        ttl_seconds=inputs.settings.cleanup_ttl_seconds,
                    )
                )
            )


def _serving_replicas(inputs: _Inputs, draft: _Draft) -> dict[str, int]:
    """How many replicas each revision that should serve gets."""
    wanted: dict[str, int] = {s.revision: inputs.total for s in draft.scale_downs}
    if draft.current is not None:
        wanted[draft.current] = inputs.total
    if draft.candidate is not None and draft.rollout is not None:
        rollout = draft.rollout
        if rollout.mode != "Canary" or rollout.promoting:
            wanted[draft.candidate] = inputs.total
        else:
            steps = canary.steps(inputs.spec.rollout)
            weight = steps[min(rollout.step, len(steps) - 1)].weight
            wanted[draft.candidate] = canary.candidate_replicas(inputs.total, weight)
    return wanted


def _sync_children(inputs: _Inputs, draft: _Draft) -> None:
    """Apply each child whose live copy is missing or stale; delete the ones nothing needs."""
    resource, spec, children = inputs.resource, inputs.spec, inputs.children
    wanted = _serving_replicas(inputs, draft)
    desired_manifests: list[dict[str, object]] = []
    for name, replicas in wanted.items():
        entry = draft.entry(name)
        assert entry is not None
        desired_manifests.append(
            manifests.deployment(
                resource,
                spec,
                revision=name,
                artifact=entry.artifact,
                search_params=_search_params(entry),
                replicas=replicas,
                image=spec.serving.image or inputs.settings.image,
            )
        )
    if wanted:
        desired_manifests += [manifests.service(resource, spec), manifests.disruption_budget(resource)]
    live = {
        (str(obj["kind"]), observed.name_of(obj)): obj
        for obj in (*children.deployments, *children.services, *children.disruption_budgets)
        if "kind" in obj
    }
    for manifest in desired_manifests:
        metadata = manifest["metadata"]
        assert isinstance(metadata, dict)
        current = live.get((str(manifest["kind"]), str(metadata["name"])))
        if current is None or _stale(current, manifest):
            draft.actions.append(plan_actions.Apply(manifest))
    for deployment in children.deployments:
        if observed.revision_of(deployment) not in wanted:
            draft.actions.append(plan_actions.Delete("apps/v1", "Deployment", observed.name_of(deployment)))
    for job in children.jobs:
        if observed.component_of(job) != manifests.COMPONENT_BUILD:
            continue  # cleanup Jobs remove themselves (ttlSecondsAfterFinished)
        entry = draft.entry(observed.revision_of(job))
        if entry is None or not _job_needed(inputs, entry, job):
            draft.actions.append(plan_actions.Delete("batch/v1", "Job", observed.name_of(job)))


def _stale(live: observed.KubeObject, manifest: dict[str, object]) -> bool:
    """Our manifest changed (its hash), or someone scaled the Deployment by hand."""
    metadata, spec = manifest["metadata"], manifest["spec"]
    assert isinstance(metadata, dict) and isinstance(spec, dict)
    if observed.spec_hash_of(live) != metadata["annotations"][manifests.ANNOTATION_SPEC_HASH]:
        return True
    return "replicas" in spec and (live.get("spec") or {}).get("replicas") != spec["replicas"]


def _job_needed(inputs: _Inputs, entry: api_status.RevisionStatus, job: observed.KubeObject) -> bool:
    """A finished build Job stays while its revision is in history (its logs explain the build);
    an earlier attempt goes, and so does a Job still running for a revision no longer building
    (superseded or aborted)."""
    name = observed.name_of(job)
    if name != manifests.job_name(inputs.resource.name, entry.name, entry.build_attempt):
        return False
    if entry.state == "Building":
        return True
    running = observed.job_outcome(job, inputs.children.build_pods(name))
    return not isinstance(running, observed.JobRunning)


def _search_params(entry: api_status.RevisionStatus) -> dict[str, object]:
    try:
        parsed = index_config.parse_config(entry.index_type, naming.config_from_wire(entry.config))
    except index_config.ConfigError:
        return {}
    return parsed.search_fields()


# --- status ---------------------------------------------------------------------------------


def _phase(inputs: _Inputs, draft: _Draft) -> api_status.Phase:
    candidate = draft.entry(draft.candidate)
    desired = draft.entry(inputs.desired.name)
    # A rolled-back revision still running, other than for the scale-down delay, is on its way out.
    lingering = {s.revision for s in draft.scale_downs}
    rolled_back_running = any(
        (e := draft.entry(observed.revision_of(d))) is not None and e.state == "RolledBack" and e.name not in lingering
        for d in inputs.children.deployments
    )
    if (draft.rollout is not None and draft.rollout.mode == "Rollback") or rolled_back_running:
        return "RollingBack"
    if candidate is not None:
        if candidate.state == "Building":
            return "Building"
        return "Deploying" if draft.current is None else "Progressing"
    if desired is not None and desired.state == "Failed" and desired.name != draft.current:
        return "Failed"
    if draft.current is not None:
        return "Ready"
    return "Pending"


def _finish(inputs: _Inputs, draft: _Draft) -> api_status.FaissIndexStatus:
    now, generation = inputs.now, inputs.resource.generation
    current = draft.entry(draft.current)
    rollout = draft.rollout
    if rollout is not None and draft.candidate is not None and draft.current is not None:
        rollout = rollout.model_copy(
            update={
                "actual_weight": canary.actual_weight(
                    candidate_ready=inputs.children.ready_replicas(draft.candidate),
                    stable_ready=inputs.children.ready_replicas(draft.current),
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
        phase=_phase(inputs, draft),
        index_type=inputs.desired.index_type,
        current_revision=draft.current,
        candidate_revision=draft.candidate,
        rollout=rollout,
        recall=current.metrics.recall if current and current.metrics else None,
        p99_latency_ms=current.metrics.p99_latency_ms if current and current.metrics else None,
        revisions=draft.revisions,
        scale_downs=draft.scale_downs,
        conditions=found,
    )


_ConditionValue = tuple[str, api_status.ConditionStatus, str, str]


def _conditions(inputs: _Inputs, draft: _Draft) -> list[_ConditionValue]:
    c = conditions
    values: list[_ConditionValue] = []
    ready_current = inputs.children.ready_replicas(draft.current) if draft.current else 0
    if draft.current is not None and ready_current > 0:
        values.append((c.READY, "True", c.SERVING, f"revision {draft.current} serves {ready_current}/{inputs.total} replicas"))
    elif draft.current is not None:
        values.append((c.READY, "False", c.NOT_SERVING, f"revision {draft.current} has no ready replica"))
    else:
        values.append((c.READY, "False", c.NO_SERVING_REVISION, "no revision serves yet"))

    progress = _progress(inputs, draft)
    if progress is not None:
        values.append((c.PROGRESSING, "True", *progress))
        values.append((c.RECONCILING, "True", *progress))
    else:
        values.append((c.PROGRESSING, "False", c.IDLE, "no rollout in progress"))
        values.append((c.RECONCILING, "False", c.IDLE, "no rollout in progress"))

    desired = draft.entry(inputs.desired.name)
    problem = _desired_problem(inputs, draft)
    if problem is not None:
        values.append((c.STALLED, "True", *problem))
    else:
        values.append((c.STALLED, "False", c.AS_EXPECTED, "nothing needs a change of spec"))
    if problem is not None:
        values.append((c.DEGRADED, "True", *problem))
    elif draft.current is not None and ready_current < inputs.total:
        values.append((c.DEGRADED, "True", c.REPLICAS_UNAVAILABLE, f"{ready_current}/{inputs.total} replicas of {draft.current} ready"))
    else:
        values.append((c.DEGRADED, "False", c.AS_EXPECTED, "all is as expected"))

    metrics = desired.metrics if desired is not None else None
    if desired is None or desired.state == "Building":
        values.append((c.INDEX_BUILT, "False", c.BUILDING, f"revision {inputs.desired.name} is being built"))
    elif metrics is None:
        values.append((c.INDEX_BUILT, "False", c.BUILD_FAILED, f"revision {desired.name}: {desired.message or desired.reason}"))
    elif desired.reused_from:
        values.append((c.INDEX_BUILT, "True", c.ARTIFACT_REUSED, f"revision {desired.name} serves the artifact of {desired.reused_from}"))
    else:
        values.append((c.INDEX_BUILT, "True", c.BUILT, f"revision {desired.name}: {metrics.vectors} vectors"))
    values.append(_target(c.RECALL_TARGET_MET, metrics.recall if metrics else None, inputs.spec.evaluation.min_recall, minimum=True, label=f"recall@{inputs.spec.evaluation.k}"))
    values.append(_target(c.LATENCY_TARGET_MET, metrics.p99_latency_ms if metrics else None, inputs.spec.evaluation.max_p99_latency_ms, minimum=False, label="p99 ms"))
    return values


def _target(type_: str, value: float | None, limit: float | None, *, minimum: bool, label: str) -> _ConditionValue:
    c = conditions
    if limit is None:
        return (type_, "True", c.NO_TARGET, "no target set")
    if value is None:
        return (type_, "Unknown", c.NOT_MEASURED, f"{label} not measured yet")
    if (value >= limit) if minimum else (value <= limit):
        return (type_, "True", c.ABOVE_THRESHOLD if minimum else c.WITHIN_LIMIT, f"{label} {value:.3f} {'>=' if minimum else '<='} {limit}")
    return (type_, "False", c.BELOW_THRESHOLD if minimum else c.ABOVE_LIMIT, f"{label} {value:.3f} {'<' if minimum else '>'} {limit}")


def _progress(inputs: _Inputs, draft: _Draft) -> tuple[str, str] | None:
    c = conditions
    candidate = draft.entry(draft.candidate)
    if candidate is None:
        return None
    rollout = draft.rollout
    if candidate.state == "Building":
        return (c.BUILDING, f"building revision {candidate.name}")
    if rollout is None or rollout.mode == "Deploy":
        return (c.DEPLOYING, f"deploying revision {candidate.name}")
    if rollout.mode == "Rollback":
        return (c.ROLLING_BACK, f"rolling back to revision {candidate.name}")
    if rollout.paused:
        return (c.PAUSED, f"paused at {rollout.weight}% on {candidate.name}: {rollout.pause_reason}")
    if rollout.promoting:
        return (c.PROMOTING, f"promoting revision {candidate.name} to all replicas")
    total_steps = len(canary.steps(inputs.spec.rollout))
    return (c.CANARY_STEP, f"step {rollout.step + 1}/{total_steps}: {rollout.weight}% on {candidate.name}")


def _desired_problem(inputs: _Inputs, draft: _Draft) -> tuple[str, str] | None:
    c = conditions
    rollout = draft.rollout
    if rollout is not None and rollout.paused and rollout.pause_reason not in (PAUSE_SPEC, PAUSE_AWAITING_PROMOTION):
        return (c.ROLLOUT_PAUSED_ON_FAILURE, f"{rollout.pause_reason}; annotate faiss.dev/promote, abort or rollback")
    desired = draft.entry(inputs.desired.name)
    if desired is None or desired.name == draft.current:
        return None
    hint = "change the spec or annotate faiss.dev/retry=true"
    if desired.state == "Failed":
        return (c.REVISION_FAILED, f"revision {desired.name} failed ({desired.reason}): {desired.message}; {hint}")
    if desired.state == "RolledBack":
        return (c.REVISION_ROLLED_BACK, f"revision {desired.name} was rolled back ({desired.reason}): {desired.message}; {hint}")
    return None


# --- plans for deletion and for a spec that cannot be acted on -----------------------------


def _refuse(
    resource: api_resource.Resource, children: observed.Children, message: str, now: datetime.datetime
) -> plan_actions.Plan:
    """Leave everything that serves untouched; say why in Stalled and Degraded."""
    old = resource.status
    found = list(old.conditions)
    for type_ in (conditions.STALLED, conditions.DEGRADED):
        found = conditions.set_condition(
            found, type_=type_, status="True", reason=conditions.INVALID_SPEC, message=message, now=now, generation=resource.generation
        )
    found = conditions.set_condition(
        found, type_=conditions.RECONCILING, status="False", reason=conditions.INVALID_SPEC, message=message, now=now, generation=resource.generation
    )
    status = old.model_copy(
        update={
            "observed_generation": resource.generation,
            "conditions": found,
            "phase": old.phase if old.current_revision else "Failed",
        }
    )
    events = (plan_actions.Event("Warning", conditions.INVALID_SPEC, message),) if status != old else ()
    return plan_actions.Plan(actions=(), status=status, status_changed=status != old, events=events)


def _deletion(
    resource: api_resource.Resource, children: observed.Children, settings: operator_settings.OperatorSettings
) -> plan_actions.Plan:
    """Stop serving, delete the children, remove the artifacts, then let the object go."""
    actions: list[plan_actions.Action] = []
    for deployment in children.deployments:
        actions.append(plan_actions.Delete("apps/v1", "Deployment", observed.name_of(deployment)))
    for job in children.jobs:
        actions.append(plan_actions.Delete("batch/v1", "Job", observed.name_of(job)))
    for service in children.services:
        actions.append(plan_actions.Delete("v1", "Service", observed.name_of(service)))
    for budget in children.disruption_budgets:
        actions.append(plan_actions.Delete("policy/v1", "PodDisruptionBudget", observed.name_of(budget)))
    removed: set[str] = set()
    for entry in resource.status.revisions:
        if entry.artifact_key in removed:
            continue
        removed.add(entry.artifact_key)
        try:
            actions.append(
                plan_actions.Apply(
                    manifests.cleanup_job(
                        resource, target=entry.artifact, key=entry.artifact_key, image=settings.image, ttl_seconds=settings.cleanup_ttl_seconds
                    )
                )
            )
        except storage.StorageError:
            continue
    if api_resource.FINALIZER in resource.finalizers:
        actions.append(plan_actions.RemoveFinalizer(api_resource.FINALIZER))
    return plan_actions.Plan(actions=tuple(actions), status=resource.status, status_changed=False)


def _plan(
    old: api_status.FaissIndexStatus,
    new: api_status.FaissIndexStatus,
    draft: _Draft,
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
            events.append(plan_actions.Event(kind, f"Revision{entry.state}", f"revision {entry.name} is {entry.state}{detail}"))
    for name in draft.pruned:
        events.append(plan_actions.Event("Normal", REASON_PRUNED, f"revision {name} removed from history"))
    if new.phase != old.phase:
        events.append(plan_actions.Event("Normal", f"Phase{new.phase}", f"phase {old.phase} -> {new.phase}"))
    requeue = None
    if draft.wake_at:
        requeue = max(0.0, (min(draft.wake_at) - now).total_seconds())
    return plan_actions.Plan(
        actions=tuple(draft.actions),
        status=new,
        status_changed=new != old,
        events=tuple(events),
        requeue_after=requeue,
    )
