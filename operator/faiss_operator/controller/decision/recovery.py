"""A lost status never touches what serves: live serving Deployments the status does not account
for are adopted back from the record each carries (the faiss.dev/revision-record annotation).

The live children are the truth for what serves. With the status wiped (or unreadable), the
Deployment with the most ready pods becomes the current revision again; any other with ready pods
keeps serving for scaleDownDelaySeconds, as a replaced revision would. A Deployment whose record
cannot be read is left exactly as it is.
"""

from __future__ import annotations

import json
from typing import Any

import pydantic

from faiss_operator.api import status as api_status
from faiss_operator.controller.decision import manifests, state
from faiss_operator.controller.decision import observed

# The fields of a revision's status entry that never change once it serves: the record.
RECORD_FIELDS = (
    "name",
    "index_type",
    "config",
    "artifact",
    "artifact_key",
    "reused_from",
    "build_attempt",
    "created_at",
)
# And of its metrics, what the build measured of its size: the serving pods' memory request is
# computed from it (controller/decision/serving_memory.py), so an adopted Deployment keeps its request.
RECORD_METRICS = ("vectors", "memory_bytes")


def record_of(entry: api_status.RevisionStatus) -> str:
    """The JSON put on the revision's Deployment (sorted keys, so its hash is stable)."""
    include: dict[str, Any] = {field: True for field in RECORD_FIELDS}
    include["metrics"] = {field: True for field in RECORD_METRICS}
    wire = entry.model_dump(mode="json", by_alias=True, exclude_none=True, include=include)
    return json.dumps(wire, sort_keys=True, separators=(",", ":"))


def _entry_from(deployment: observed.ObservedDeployment, **values: object) -> api_status.RevisionStatus | None:
    raw = deployment.record
    if raw is None:
        return None
    try:
        record = json.loads(raw)
        if not isinstance(record, dict):
            return None
        entry = api_status.RevisionStatus.model_validate({**record, "state": "Retired", "metrics": record.get("metrics") or {}})
    except (ValueError, pydantic.ValidationError):
        return None
    if entry.name != deployment.revision:
        return None
    return entry.model_copy(update=values)


def adopt_serving(inputs: state.Inputs, draft: state.Draft) -> None:
    """Give back to the draft the serving Deployments with ready pods that it does not account for.

    Only when no revision is current (the status was lost, or never written): with a current
    revision, a Deployment the status does not know is a stray (or one whose deletion has not
    landed yet) and goes as before."""
    if draft.current is not None:
        return
    accounted = {draft.current, draft.candidate, *(s.revision for s in draft.scale_downs)}
    live = [
        (inputs.children.ready_replicas(revision), revision, deployment)
        for deployment in inputs.children.deployments
        if deployment.component == manifests.COMPONENT_SERVING
        and (revision := deployment.revision) is not None
        and revision not in accounted
    ]
    serving = sorted(((-ready, revision, d) for ready, revision, d in live if ready > 0), key=lambda t: t[:2])
    message = "adopted from its serving Deployment: the status did not record it"
    for _, revision, deployment in serving:
        known = draft.entry(revision)
        if draft.current is None and known is not None and known.state == "Active":
            draft.current = known.name
            draft.warn(state.REASON_STATUS_REPAIRED, f"revision {revision} serves: {message}")
            continue
        if known is not None:
            continue  # a revision the status knows in another state: its own rules apply
        entry = _entry_from(deployment, reason=state.REASON_STATUS_REPAIRED, message=message)
        if entry is None:
            draft.untouchable.add(revision)
            draft.warn(
                state.REASON_STATUS_REPAIRED,
                f"Deployment {deployment.name} serves revision {revision}, which the status does not "
                "record and which carries no readable record; left as it is",
            )
            continue
        if draft.current is None:
            draft.revisions.insert(0, entry.model_copy(update={"state": "Active", "promoted_at": inputs.now}))
            draft.current = entry.name
        else:
            draft.revisions.append(entry)
            # At least until the next pass, so that the plan that finds it never deletes it.
            delay = max(1, inputs.spec.rollout.scale_down_delay_seconds)
            draft.scale_downs.append(api_status.ScaleDown(revision=entry.name, after=inputs.after(delay)))
        draft.warn(state.REASON_STATUS_REPAIRED, f"revision {revision} serves: {message}")
