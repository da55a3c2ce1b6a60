"""The one place that reads child objects as the API server returns them (JSON-shaped mappings)
and turns each into the frozen view the decision reads (decision/observed.py).

Every `.get(...) or {}` over a raw Job, Deployment, Service, PodDisruptionBudget or Pod is here;
so is a build Job's outcome, worked out once from the Job and its pods.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from faiss_operator.contract import serving_http
from faiss_operator.controller.decision import manifests, observed

KubeObject = Mapping[str, Any]


def children(
    *,
    jobs: Iterable[KubeObject] = (),
    pods: Iterable[KubeObject] = (),
    deployments: Iterable[KubeObject] = (),
    services: Iterable[KubeObject] = (),
    disruption_budgets: Iterable[KubeObject] = (),
    claims: frozenset[str] | None = None,
    terminating_claims: frozenset[str] = frozenset(),
    namespace_terminating: bool = False,
) -> observed.Children:
    """The views of one FaissIndex's children. `pods` are all its pods: a build Job's pods give
    the Job its outcome, the serving pods are kept as such."""
    pods = list(pods)
    build_pods = [pod for pod in pods if _component(pod) != manifests.COMPONENT_SERVING]
    return observed.Children(
        jobs=tuple(job_view(job, build_pods) for job in jobs),
        deployments=tuple(deployment_view(d) for d in deployments),
        services=tuple(object_view(s) for s in services),
        disruption_budgets=tuple(object_view(b) for b in disruption_budgets),
        serving_pods=tuple(pod_view(p) for p in pods if _component(p) == manifests.COMPONENT_SERVING),
        claims=claims,
        terminating_claims=terminating_claims,
        namespace_terminating=namespace_terminating,
    )


def object_view(obj: KubeObject) -> observed.ObservedObject:
    return observed.ObservedObject(
        name=_name(obj), revision=_revision(obj), component=_component(obj), spec_hash=_spec_hash(obj)
    )


def job_view(job: KubeObject, pods: Sequence[KubeObject]) -> observed.ObservedJob:
    """`pods` may be all the index's build pods: the Job's own are found by their label."""
    name = _name(job)
    own = [pod for pod in pods if _labels(pod).get(manifests.LABEL_BUILD_JOB) == name]
    return observed.ObservedJob(
        name=name,
        spec_hash=_spec_hash(job),
        revision=_revision(job),
        component=_component(job),
        outcome=job_outcome(job, own),
        finished_pods=tuple(
            _name(pod)
            for pod in own
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
            and not (pod.get("metadata") or {}).get("deletionTimestamp")
        ),
    )


def deployment_view(deployment: KubeObject) -> observed.ObservedDeployment:
    spec = deployment.get("spec") or {}
    record = _annotations(deployment).get(manifests.ANNOTATION_REVISION_RECORD)
    replicas = spec.get("replicas")
    return observed.ObservedDeployment(
        name=_name(deployment),
        spec_hash=_spec_hash(deployment),
        revision=_revision(deployment),
        component=_component(deployment),
        replicas=replicas if isinstance(replicas, int) else None,
        ready_replicas=int((deployment.get("status") or {}).get("readyReplicas") or 0),
        record=record if isinstance(record, str) else None,
        replica_failure=_replica_failure(deployment),
    )


def pod_view(pod: KubeObject) -> observed.ObservedPod:
    metadata = pod.get("metadata") or {}
    status = pod.get("status") or {}
    ip, port = status.get("podIP"), _serving_port(pod)
    return observed.ObservedPod(
        name=_name(pod),
        spec_hash=_spec_hash(pod),
        revision=_revision(pod),
        component=_component(pod),
        ready=any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or ()),
        terminating=bool(metadata.get("deletionTimestamp")),
        address=f"http://{ip}:{port}" if ip and port is not None else None,
        terminations=tuple(
            terminated
            for state in ("state", "lastState")
            if (terminated := _terminated_view(_container_status(pod, manifests.SERVING_CONTAINER).get(state)))
            is not None
        ),
        restarts=int(_container_status(pod, manifests.SERVING_CONTAINER).get("restartCount") or 0),
        problem=_pod_problem(status),
        claims=frozenset(
            str(claim)
            for volume in (pod.get("spec") or {}).get("volumes") or ()
            if (claim := (volume.get("persistentVolumeClaim") or {}).get("claimName"))
        ),
    )


def job_outcome(job: KubeObject, pods: Sequence[KubeObject]) -> observed.JobOutcome:
    """Read a build Job's result; the report (or the failure's cause) is in its pods' statuses."""
    status = job.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or () if c.get("status") == "True"}
    if "Complete" in conditions or int(status.get("succeeded") or 0) > 0:
        succeeded = [pod for pod in pods if (pod.get("status") or {}).get("phase") == "Succeeded"]
        if not succeeded:
            created = (job.get("metadata") or {}).get("creationTimestamp")
            return observed.JobCompletedPodUnseen(completed_at=_timestamp(status.get("completionTime") or created))
        terminated = _terminated(succeeded[-1])
        return observed.JobSucceeded(termination_message=(terminated or {}).get("message"))
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
        return observed.JobFailed(
            reason=str(condition.get("reason") or "Failed"),
            message="; ".join(parts),
            terminated=_terminated_view({"terminated": terminated}) if terminated is not None else None,
            memory_limit=_memory_limit(job),
        )
    return observed.JobRunning()


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


def _replica_failure(deployment: KubeObject) -> str | None:
    """The Deployment's ReplicaFailure condition (the ReplicaSet's FailedCreate, copied there by
    the Deployment controller: a quota exceeded, PodSecurity refusing the pod) in one line."""
    for condition in (deployment.get("status") or {}).get("conditions") or ():
        if condition.get("type") == "ReplicaFailure" and condition.get("status") == "True":
            return _line(condition.get("reason") or "FailedCreate", condition.get("message"))
    return None


def _pod_problem(status: Mapping[str, Any]) -> str | None:
    """Why a pod is not ready, when its status says: no node for it, or a container waiting for
    a reason that does not pass on its own."""
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


def _name(obj: KubeObject) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _labels(obj: KubeObject) -> Mapping[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def _annotations(obj: KubeObject) -> Mapping[str, Any]:
    return (obj.get("metadata") or {}).get("annotations") or {}


def _revision(obj: KubeObject) -> str | None:
    return _labels(obj).get(manifests.LABEL_REVISION)


def _component(obj: KubeObject) -> str | None:
    return _labels(obj).get(manifests.LABEL_COMPONENT)


def _spec_hash(obj: KubeObject) -> str | None:
    value = _annotations(obj).get(manifests.ANNOTATION_SPEC_HASH)
    return str(value) if value is not None else None


def _serving_port(pod: KubeObject) -> int | None:
    for container in (pod.get("spec") or {}).get("containers") or ():
        if container.get("name") == manifests.SERVING_CONTAINER:
            for port in container.get("ports") or ():
                if port.get("name") == serving_http.PORT_NAME:
                    return int(port["containerPort"])
    return None


def _terminated(pod: KubeObject) -> Mapping[str, Any] | None:
    for container in (pod.get("status") or {}).get("containerStatuses") or ():
        if container.get("name") == manifests.BUILD_CONTAINER:
            state = container.get("state") or {}
            terminated = state.get("terminated")
            return terminated if isinstance(terminated, Mapping) else None
    return None


def _container_status(pod: KubeObject, container: str) -> Mapping[str, Any]:
    for status in (pod.get("status") or {}).get("containerStatuses") or ():
        if status.get("name") == container:
            return status if isinstance(status, Mapping) else {}
    return {}


def _terminated_view(state: object) -> observed.Terminated | None:
    """The `terminated` of a container state (`state` or `lastState`), None when it has none."""
    terminated = state.get("terminated") if isinstance(state, Mapping) else None
    if not isinstance(terminated, Mapping):
        return None
    code, reason, message = terminated.get("exitCode"), terminated.get("reason"), terminated.get("message")
    return observed.Terminated(
        exit_code=code if isinstance(code, int) else None,
        reason=str(reason) if reason is not None else None,
        message=str(message) if message is not None else None,
    )


def _memory_limit(job: KubeObject) -> str | None:
    """The build container's memory limit in the Job's pod template; None when it sets none."""
    template = ((job.get("spec") or {}).get("template") or {}).get("spec") or {}
    for container in template.get("containers") or ():
        if container.get("name") == manifests.BUILD_CONTAINER:
            limit = ((container.get("resources") or {}).get("limits") or {}).get("memory")
            return str(limit) if limit is not None else None
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
