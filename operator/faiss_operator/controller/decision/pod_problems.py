"""Why a revision's pods are missing or not ready, in one line for the conditions.

A canary blocked by a ResourceQuota, a pod PodSecurity refuses, an image that cannot be pulled
or a pod no node can take all look the same from the Deployment's ready count: fewer ready
replicas than wanted until the progress deadline. The reason is in the Deployment's
ReplicaFailure condition (the ReplicaSet's FailedCreate) and in the pods' own statuses, read
into the observed views by runtime/child_views.py; this module picks the one that names the
cause, so that Progressing and Degraded can say it (`kubectl get` / `describe` of the
FaissIndex) without anyone digging into ReplicaSets.
"""

from __future__ import annotations

from faiss_operator.controller.decision import observed


def why_missing(children: observed.Children, revision: str) -> str | None:
    """`FailedCreate: pods "..." is forbidden: exceeded quota: ...`, `Unschedulable: 0/3 nodes
    ...`, `ImagePullBackOff: ...` for `revision`, or None when nothing says why."""
    deployment = children.deployment(revision)
    if deployment is not None and deployment.replica_failure is not None:
        return deployment.replica_failure
    return next(
        (
            pod.problem
            for pod in children.serving_pods
            if pod.revision == revision and not pod.terminating and pod.problem is not None
        ),
        None,
    )
