"""A revision's way to the rollout: adopted from the spec, built by its Job, judged by its gates.

A new spec gives a new revision (or a retained one, reverted to, or one reusing a built
artifact when only search-time parameters changed); the Job's report becomes its metrics;
the evaluation gates decide whether it may take traffic at all.
"""

from __future__ import annotations

import datetime

from faiss_operator.api import status as api_status
from faiss_operator.controller.decision import actions as plan_actions
from faiss_operator.contract import build_report
from faiss_operator.controller.decision import canary, gates, manifests, memory_kills, modes, object_store, state, storage
from faiss_operator.controller.decision import observed

# How long a complete build Job's pod may stay unseen before the revision fails, and how often
# to look for it meanwhile.
BUILD_POD_GRACE_SECONDS = 60
BUILD_POD_RECHECK_SECONDS = 5
# How often to look again while a cleanup Job of the same artifact still runs before a build.
CLEANUP_RECHECK_SECONDS = 5
# The Job condition reason when activeDeadlineSeconds passed: its pods were killed, not for memory.
JOB_DEADLINE_EXCEEDED = "DeadlineExceeded"


def adopt_desired(inputs: state.Inputs, draft: state.Draft) -> None:
    """Make the spec's revision the candidate: new, reverted to, or held because it failed."""
    name = inputs.desired.name
    entry = draft.entry(name)
    if entry is not None and entry.source_objects is None and inputs.desired.source_objects:
        # Made before the operator read its source objects' identity: the identity seen now is
        # recorded, so that an overwrite from now on makes a new revision (revisions.py).
        entry = draft.update(name, source_objects=dict(inputs.desired.source_objects))
    in_rollback = modes.is_rolling_back(draft.mode)
    if name == draft.current:
        if not in_rollback:
            _supersede(draft, f"the spec returned to {name}")
        return
    if name == draft.candidate or in_rollback:
        return
    _supersede(draft, f"superseded by {name}")
    if entry is not None and entry.state in ("Failed", "RolledBack"):
        return  # held until the spec changes or faiss.dev/retry
    if entry is not None and state.has_artifact(entry):
        draft.move(name, "Built", reason=state.REASON_REVERTED, message="the spec returned to this revision")
    elif entry is not None:  # known but never built (superseded while building): build it now
        draft.move(name, "Building", reason=None, message=None, build_attempt=entry.build_attempt + 1)
    else:
        draft.revisions.insert(0, _new_revision(inputs, draft))
    draft.candidate = name


def _supersede(draft: state.Draft, message: str) -> None:
    """The candidate in progress, if any, gives way (a newer spec, or the spec back to what serves)."""
    if draft.candidate is not None:
        state.end_candidate(draft, state="Superseded", reason=state.REASON_SUPERSEDED, message=message)


def _new_revision(inputs: state.Inputs, draft: state.Draft) -> api_status.RevisionStatus:
    """The spec's revision, first seen: Building, or Built when it reuses the artifact of one
    that differs only in search-time parameters (its donor)."""
    desired = inputs.desired
    donor = next((e for e in draft.revisions if e.artifact_key == desired.artifact_key and state.has_artifact(e)), None)
    return api_status.RevisionStatus(
        name=desired.name,
        index_type=desired.index_type,
        config=desired.config,
        artifact=desired.artifact,
        artifact_key=desired.artifact_key,
        state="Built" if donor is not None else "Building",
        reason=state.REASON_REUSED if donor is not None else None,
        message=f"search-time parameters changed; serves the artifact built for {donor.name}" if donor else None,
        metrics=_reused_metrics(donor.metrics) if donor is not None and donor.metrics else None,
        reused_from=donor.name if donor is not None else None,
        source_objects=dict(desired.source_objects) or None,
        created_at=inputs.now,
    )


def _reused_metrics(metrics: api_status.RevisionMetrics) -> api_status.RevisionMetrics:
    """What still holds for other search-time parameters: size and build cost, not recall/latency."""
    return api_status.RevisionMetrics(
        vectors=metrics.vectors, memory_bytes=metrics.memory_bytes, build_seconds=metrics.build_seconds
    )


def reconcile_build(inputs: state.Inputs, draft: state.Draft) -> None:
    entry = draft.entry(draft.candidate)
    if entry is None or entry.state != "Building":
        return
    name = manifests.job_name(inputs.resource.name, entry.name, entry.build_attempt)
    job = inputs.children.job(name)
    if job is None:
        cleanup = inputs.children.job(manifests.cleanup_job_name(inputs.resource.name, entry.artifact_key))
        if cleanup is not None and isinstance(cleanup.outcome, observed.JobRunning):
            # The files of this very artifact are being removed (it left history earlier): build
            # only once that is over, or the cleanup would delete what the build writes.
            draft.wake_at.append(inputs.after(CLEANUP_RECHECK_SECONDS))
            return
        desired = inputs.desired
        try:
            build = manifests.build_job(
                inputs.resource,
                inputs.spec,
                revision=entry.name,
                attempt=entry.build_attempt,
                artifact=entry.artifact,
                index_type=desired.index_type,
                build_config=desired.build_config,
                image=desired.builder_image,
                object_store=object_store.resolve(inputs.spec.object_store, inputs.settings.object_store),
            )
        except storage.StorageError as error:  # an artifact from a hand-edited status
            state.end_candidate(draft, state="Failed", reason=state.REASON_BAD_ARTIFACT, message=str(error))
            return
        draft.actions.append(plan_actions.Apply(build))
        return
    outcome = job.outcome
    if isinstance(outcome, observed.JobRunning):
        return
    if isinstance(outcome, observed.JobCompletedPodUnseen):
        _await_build_pod(inputs, draft, name, outcome)
        return
    if isinstance(outcome, observed.JobFailed):
        if outcome.terminated is not None and memory_kills.killed_for_memory(
            outcome.terminated, by_exit_code=outcome.reason != JOB_DEADLINE_EXCEEDED
        ):
            message = memory_kills.build_message(outcome.terminated, limit=outcome.memory_limit)
            state.end_candidate(draft, state="Failed", reason=state.REASON_BUILD_OOM_KILLED, message=message)
            return
        state.end_candidate(draft, state="Failed", reason=state.REASON_BUILD_FAILED, message=outcome.message)
        return
    try:
        built = build_report.parse_report(outcome.termination_message)
    except build_report.ReportError as error:
        state.end_candidate(draft, state="Failed", reason=state.REASON_BAD_REPORT, message=str(error))
        return
    draft.move(entry.name, "Built", reason=None, message=None, metrics=revision_metrics(built, k=inputs.spec.evaluation.k))
    degenerate = built.degenerate_data()
    if degenerate is not None:  # said once: the revision leaves Building only here
        draft.warn(state.REASON_DEGENERATE_DATA, f"revision {entry.name} {degenerate}")


def revision_metrics(built: build_report.BuildReport, *, k: int) -> api_status.RevisionMetrics:
    """What a build measured, as status.revisions[].metrics; `k` when the report names none."""
    return api_status.RevisionMetrics(
        vectors=built.vectors,
        k=built.k if built.k is not None else k,
        recall=built.recall,
        p50_latency_ms=built.p50_ms,
        p99_latency_ms=built.p99_ms,
        memory_bytes=built.memory_bytes,
        build_seconds=built.build_seconds,
    )


def _await_build_pod(
    inputs: state.Inputs, draft: state.Draft, job: str, outcome: observed.JobCompletedPodUnseen
) -> None:
    """A complete Job whose pod is not seen yet is still finishing: look again soon, and give up
    only when the pod stays unseen for BUILD_POD_GRACE_SECONDS after the Job completed."""
    if outcome.completed_at is not None:
        deadline = outcome.completed_at + datetime.timedelta(seconds=BUILD_POD_GRACE_SECONDS)
        if inputs.now >= deadline:
            message = (
                f"Job {job} completed but its pod was not found within {BUILD_POD_GRACE_SECONDS}s, "
                "so its report cannot be read; annotate faiss.dev/retry=true to build again"
            )
            state.end_candidate(draft, state="Failed", reason=state.REASON_BUILD_POD_NOT_FOUND, message=message)
            return
        draft.wake_at.append(min(deadline, inputs.after(BUILD_POD_RECHECK_SECONDS)))
        return
    # A Job without completion or creation time (never from a real API server): keep looking.
    draft.wake_at.append(inputs.after(BUILD_POD_RECHECK_SECONDS))


def reconcile_gates(inputs: state.Inputs, draft: state.Draft) -> None:
    """Judge a built candidate by its build's evaluation, then start its rollout."""
    desired_entry = draft.entry(inputs.desired.name)
    if (
        draft.candidate is None
        and desired_entry is not None
        and desired_entry.state == "Failed"
        and desired_entry.reason == state.REASON_GATES_NOT_MET
        and not gates.failures(inputs.spec, desired_entry.metrics)
    ):
        # The gates were lowered (which makes no new revision): the built revision now qualifies.
        draft.move(desired_entry.name, "Built", reason=None, message=None)
        draft.candidate = desired_entry.name
    entry = draft.entry(draft.candidate)
    if entry is None or entry.state != "Built" or draft.mode is not None:
        return
    failures = gates.failures(inputs.spec, entry.metrics)
    if failures:
        state.end_candidate(draft, state="Failed", reason=state.REASON_GATES_NOT_MET, message="; ".join(failures))
        return
    if draft.current is None:
        draft.enter(modes.Deploying(modes.Progress(inputs.now)))
        return
    first = canary.step_at(inputs.spec.rollout, 0)
    draft.move(entry.name, "Canary", reason=entry.reason, message=entry.message)
    draft.enter(modes.Stepping(0, first.weight, modes.Progress(inputs.now)))
