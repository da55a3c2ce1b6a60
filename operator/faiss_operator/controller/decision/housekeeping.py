"""Children and history: apply the children that are missing or stale, delete the ones nothing
needs, and keep at most revisionHistoryLimit + 1 revisions, removing artifacts no one uses.
"""

from __future__ import annotations

from faiss_operator.api import status as api_status
from faiss_operator.controller.decision import actions as plan_actions
from faiss_operator.controller.decision import keep_serving, manifests, object_store, recovery, revisions, rollout
from faiss_operator.controller.decision import serving_memory, state, storage
from faiss_operator.controller.decision import observed


# How soon to look again for a build Job being deleted, whose revision then leaves history.
BUILD_JOB_RECHECK_SECONDS = 5


def collect_garbage(inputs: state.Inputs, draft: state.Draft) -> None:
    """Keep at most revisionHistoryLimit + 1 revisions; remove the files no kept revision uses.

    Files go whatever became of their build (built, failed, superseded or aborted while
    building): a build that never completed may still have written part of them."""
    protected = {draft.current, draft.candidate, inputs.desired.name, *(s.revision for s in draft.scale_downs)}
    # A revision whose pods are the only ready ones keeps its files while they serve them.
    protected |= keep_serving.held(inputs, draft, rollout.serving_replicas(inputs, draft))
    # A revision whose build Job still runs stays until that Job is gone (sync_children deletes
    # it): removing its files while the build may still write them would race.
    building = {
        entry.name
        for entry in draft.revisions
        if (job := inputs.children.job(manifests.job_name(inputs.resource.name, entry.name, entry.build_attempt)))
        is not None
        and isinstance(job.outcome, observed.JobRunning)
    }
    if building - protected:
        draft.wake_at.append(inputs.after(BUILD_JOB_RECHECK_SECONDS))
    protected |= building
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
        if entry.artifact_key not in kept_keys:
            kept_keys.add(entry.artifact_key)
            try:
                cleanup = manifests.cleanup_job(
                    inputs.resource,
                    target=entry.artifact,
                    key=entry.artifact_key,
                    image=inputs.settings.image,
                    ttl_seconds=inputs.settings.cleanup_ttl_seconds,
                    settings=inputs.spec.build,
                    object_store=object_store.resolve(
                        object_store.of_raw_spec(inputs.resource.spec), inputs.settings.object_store),
                )
            except storage.StorageError as error:  # a hand-edited status: nothing safe to remove
                draft.warn(state.REASON_STATUS_REPAIRED, f"revision {entry.name}: files not removed: {error}")
                continue
            draft.actions.append(plan_actions.Apply(cleanup))


def sync_children(inputs: state.Inputs, draft: state.Draft) -> None:
    """Apply each child whose live copy is missing or stale; delete the ones nothing needs."""
    resource, spec, children = inputs.resource, inputs.spec, inputs.children
    wanted = rollout.serving_replicas(inputs, draft)
    desired_manifests: list[manifests.Manifest] = []
    for name, replicas in wanted.items():
        entry = draft.entry(name)
        if entry is None:
            continue
        try:
            desired_manifests.append(
                manifests.deployment(
                    resource,
                    spec,
                    revision=name,
                    artifact=entry.artifact,
                    search_params=_search_params(inputs, entry),
                    replicas=replicas,
                    image=spec.serving.image or inputs.settings.image,
                    record=recovery.record_of(entry),
                    measured=serving_memory.Measured.of(entry.metrics),
                    object_store=object_store.resolve(spec.object_store, inputs.settings.object_store),
                )
            )
        except storage.StorageError as error:
            # Only a hand-edited status holds such an artifact: leave its Deployment as it is.
            draft.untouchable.add(name)
            draft.warn(state.REASON_STATUS_REPAIRED, f"revision {name}: Deployment left as it is: {error}")
    budget = manifests.disruption_budget(resource, spec)
    if wanted:
        desired_manifests.append(manifests.service(resource, spec))
        if budget is not None:
            desired_manifests.append(budget)
    if budget is None:  # disabled (serving.podDisruptionBudget.enabled false): the one made before goes
        for live_budget in children.disruption_budgets:
            draft.actions.append(plan_actions.Delete("policy/v1", "PodDisruptionBudget", live_budget.name))
    # Items of a list response carry no kind of their own: the group they were listed in says it.
    live = {
        (kind, obj.name): obj
        for kind, group in (
            ("Deployment", children.deployments),
            ("Service", children.services),
            ("PodDisruptionBudget", children.disruption_budgets),
        )
        for obj in group
    }
    for manifest in desired_manifests:
        current = live.get((str(manifest["kind"]), str(manifest["metadata"]["name"])))
        if current is None or _stale(current, manifest):
            draft.actions.append(plan_actions.Apply(manifest))
    held = keep_serving.held(inputs, draft, wanted)
    for deployment in children.deployments:
        revision = deployment.revision
        if revision not in wanted and revision not in draft.untouchable and revision not in held:
            draft.actions.append(plan_actions.Delete("apps/v1", "Deployment", deployment.name))
    for job in children.jobs:
        if job.component != manifests.COMPONENT_BUILD:
            continue  # cleanup Jobs remove themselves, and their pods (ttlSecondsAfterFinished)
        entry = draft.entry(job.revision)
        if entry is None or not _job_needed(inputs, entry, job):
            draft.actions.append(plan_actions.Delete("batch/v1", "Job", job.name))
        elif entry.state != "Building":
            _release_build_pods(inputs, draft, job)


def _release_build_pods(inputs: state.Inputs, draft: state.Draft, job: observed.ObservedJob) -> None:
    """Delete the pods of a finished build Job once the stored status records its outcome.

    The report is read from the pod's termination message, so its pod goes only when the status
    as read back from the API server (not just this draft) has it: a lost status write then
    costs nothing. The Job stays, with its conditions and Events. A finished pod keeps
    referencing the claims it mounted, so a claim deleted later would otherwise stay Terminating
    for as long as the pod exists (FoundationDB/fdb-kubernetes-operator#764)."""
    if not job.finished_pods or isinstance(job.outcome, observed.JobRunning):
        return
    stored = inputs.resource.status.revision(job.revision)
    if stored is None or stored.state == "Building":
        draft.wake_at.append(inputs.after(BUILD_JOB_RECHECK_SECONDS))  # once this status landed
        return
    draft.actions.extend(plan_actions.Delete("v1", "Pod", pod) for pod in job.finished_pods)


def _stale(live: observed.ObservedObject, manifest: manifests.Manifest) -> bool:
    """Our manifest changed (its hash), or someone scaled the Deployment by hand."""
    metadata, spec = manifest["metadata"], manifest["spec"]
    if live.spec_hash != metadata["annotations"][manifests.ANNOTATION_SPEC_HASH]:
        return True
    replicas = live.replicas if isinstance(live, observed.ObservedDeployment) else None
    return "replicas" in spec and replicas != spec["replicas"]


def _job_needed(inputs: state.Inputs, entry: api_status.RevisionStatus, job: observed.ObservedJob) -> bool:
    """A finished build Job stays while its revision is in history (its logs explain the build);
    an earlier attempt goes, and so does a Job still running for a revision no longer building
    (superseded or aborted)."""
    if job.name != manifests.job_name(inputs.resource.name, entry.name, entry.build_attempt):
        return False
    if entry.state == "Building":
        return True
    return not isinstance(job.outcome, observed.JobRunning)


def _search_params(inputs: state.Inputs, entry: api_status.RevisionStatus) -> dict[str, object]:
    if entry.name == inputs.desired.name:
        return dict(inputs.desired.search_params)  # resolved once, in decide
    # A config that no longer parses (written by another operator version) serves with the
    # parameters stored in the artifact itself rather than stopping the revision.
    parsed = entry.typed_config()
    return {} if parsed is None else parsed.search_fields()
