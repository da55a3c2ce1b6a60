"""Why a revision's pods are missing or not ready, in one line for the conditions.

A canary blocked by a ResourceQuota, a pod PodSecurity refuses, an image that cannot be pulled
or a pod no node can take all look the same from the Deployment's ready count: fewer ready
replicas than wanted until the progress deadline. The reason is in the Deployment's
ReplicaFailure condition (the ReplicaSet's FailedCreate, copied there by the Deployment
controller) and in the pods' own statuses; this module reads them from the observed children so
that Progressing and Degraded can name it (`kubectl get` / `describe` of the FaissIndex) without
anyone digging into ReplicaSets. Pure: the children are observed by the Kopf layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from faiss_operator.controller.decision import observed

# Container waiting reasons that keep a pod from ever becoming ready on its own.
WAITING_REASONS = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "CrashLoopBackOff",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)
MESSAGE_LIMIT = 300  # an API server message can be long (a quota lists every resource)


def why_missing(children: observed.Children, revision: str) -> str | None:
    """`FailedCreate: pods "..." is forbidden: exceeded quota: ...`, `Unschedulable: 0/3 nodes
    ...`, `ImagePullBackOff: ...` for `revision`, or None when nothing says why."""
    deployment = children.deployment(revision)
    if deployment is not None:
        for condition in (deployment.get("status") or {}).get("conditions") or ():
            if condition.get("type") == "ReplicaFailure" and condition.get("status") == "True":
                return _line(condition.get("reason") or "FailedCreate", condition.get("message"))
    for pod in children.serving_pods:
        if observed.revision_of(pod) != revision or (pod.get("metadata") or {}).get("deletionTimestamp"):
            continue
        found = _pod_problem(pod)
        if found is not None:
            return found
    return None


def _pod_problem(pod: Mapping[str, Any]) -> str | None:
    status = pod.get("status") or {}
    for condition in status.get("conditions") or ():
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return _line(condition.get("reason") or "Unschedulable", condition.get("message"))
    for container in (*(status.get("initContainerStatuses") or ()), *(status.get("containerStatuses") or ())):
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in WAITING_REASONS:
            return _line(str(waiting["reason"]), waiting.get("message"))
    return None


def _line(reason: object, message: object) -> str:
    text = " ".join(str(message or "").split())
    if len(text) > MESSAGE_LIMIT:
        text = text[: MESSAGE_LIMIT - 3] + "..."
    return f"{reason}: {text}" if text else str(reason)
