"""The child objects as observed, and what they say: a Deployment's ready replicas, a Job's outcome.

Children arrive as the API server returns them (plain JSON-shaped mappings); each is found by the
labels the manifests put on it, never by listing order.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from faiss_operator.controller.decision import manifests

KubeObject = Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class Children:
    jobs: Sequence[KubeObject] = ()
    pods: Sequence[KubeObject] = ()  # pods of the build Jobs
    deployments: Sequence[KubeObject] = ()
    services: Sequence[KubeObject] = ()
    disruption_budgets: Sequence[KubeObject] = ()
    serving_pods: Sequence[KubeObject] = ()  # pods labelled faiss.dev/component=serving
    # The PersistentVolumeClaims the spec references that exist in the namespace; None when not
    # observed (then nothing is said about claims).
    claims: frozenset[str] | None = None

    def job(self, name: str) -> KubeObject | None:
        return next((job for job in self.jobs if _name(job) == name), None)

    def deployment(self, revision: str) -> KubeObject | None:
        return next((d for d in self.deployments if _labels(d).get(manifests.LABEL_REVISION) == revision), None)

    def ready_replicas(self, revision: str) -> int:
        deployment = self.deployment(revision)
        if deployment is None:
            return 0
        return int((deployment.get("status") or {}).get("readyReplicas") or 0)

    def build_pods(self, job_name: str) -> list[KubeObject]:
        return [pod for pod in self.pods if _labels(pod).get(manifests.LABEL_BUILD_JOB) == job_name]


def _name(obj: KubeObject) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _labels(obj: KubeObject) -> Mapping[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def name_of(obj: KubeObject) -> str:
    return _name(obj)


def revision_of(obj: KubeObject) -> str | None:
    return _labels(obj).get(manifests.LABEL_REVISION)


def component_of(obj: KubeObject) -> str | None:
    return _labels(obj).get(manifests.LABEL_COMPONENT)


def spec_hash_of(obj: KubeObject) -> str | None:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(manifests.ANNOTATION_SPEC_HASH)
    return str(value) if value is not None else None


@dataclasses.dataclass(frozen=True)
class JobRunning:
    pass


@dataclasses.dataclass(frozen=True)
class JobSucceeded:
    termination_message: str | None


@dataclasses.dataclass(frozen=True)
class JobCompletedPodUnseen:
    """The Job says Complete but no succeeded pod of it is observed yet (the pod list lags, or
    the pod was removed): its report cannot be read. `completed_at` is the Job's completionTime,
    or its creation time when the API server gave none."""

    completed_at: datetime.datetime | None


@dataclasses.dataclass(frozen=True)
class JobFailed:
    reason: str
    message: str


JobOutcome = JobRunning | JobSucceeded | JobCompletedPodUnseen | JobFailed


def job_outcome(job: KubeObject, pods: Sequence[KubeObject]) -> JobOutcome:
    """Read a build Job's result; the report (or the failure's cause) is in its pods' statuses."""
    status = job.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or () if c.get("status") == "True"}
    if "Complete" in conditions or int(status.get("succeeded") or 0) > 0:
        succeeded = [pod for pod in pods if (pod.get("status") or {}).get("phase") == "Succeeded"]
        if not succeeded:
            created = (job.get("metadata") or {}).get("creationTimestamp")
            return JobCompletedPodUnseen(completed_at=_timestamp(status.get("completionTime") or created))
        terminated = _terminated(succeeded[-1])
        return JobSucceeded(termination_message=(terminated or {}).get("message"))
    if "Failed" in conditions:
        condition = conditions["Failed"]
        parts = [f"{condition.get('reason', 'Failed')}: {condition.get('message', 'the build Job failed')}"]
        failed = [pod for pod in pods if (pod.get("status") or {}).get("phase") == "Failed"]
        terminated = _terminated(failed[-1]) if failed else None
        if terminated is not None:
            exit_line = f"last build pod exited with code {terminated.get('exitCode')}"
            if terminated.get("reason"):
                exit_line += f" ({terminated['reason']})"
            if terminated.get("message"):
                exit_line += ": " + str(terminated["message"]).strip()[-1024:]
            parts.append(exit_line)
        return JobFailed(reason=str(condition.get("reason") or "Failed"), message="; ".join(parts))
    return JobRunning()


def _terminated(pod: KubeObject) -> Mapping[str, Any] | None:
    for container in (pod.get("status") or {}).get("containerStatuses") or ():
        if container.get("name") == manifests.BUILD_CONTAINER:
            state = container.get("state") or {}
            terminated = state.get("terminated")
            return terminated if isinstance(terminated, Mapping) else None
    return None


def _timestamp(value: object) -> datetime.datetime | None:
    """An API server time (RFC 3339, e.g. 2026-11-25T15:00:00Z); None when absent or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=datetime.timezone.utc)
