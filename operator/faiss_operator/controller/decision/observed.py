"""The child objects as observed: frozen typed views, made once per pass by runtime/observe.py.

A Job, Deployment, Service, PodDisruptionBudget or Pod reaches the decision as the few facts it
reads from it (name, revision, component, a Job's outcome, a Deployment's ready replicas, ...),
never as the raw object the API server returned: reading raw objects is observe's job alone
(runtime/child_views.py). Each child is found by the labels the manifests put on it, never by
listing order.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping, Sequence


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
class Terminated:
    """A container's terminated state: how it ended (reason OOMKilled: killed for memory) and
    its termination message (a build's report, or what it measured before it was killed)."""

    exit_code: int | None = None
    reason: str | None = None
    message: str | None = None


@dataclasses.dataclass(frozen=True)
class JobFailed:
    reason: str
    message: str
    # The last failed pod's build container, None when no failed pod is observed.
    terminated: Terminated | None = None
    memory_limit: str | None = None  # the build container's, as the Job ran it


JobOutcome = JobRunning | JobSucceeded | JobCompletedPodUnseen | JobFailed


@dataclasses.dataclass(frozen=True, kw_only=True)
class ObservedObject:
    """A child of the FaissIndex (a Service or PodDisruptionBudget as such): its name, the
    revision and component its labels name (None for the index-wide ones), and the hash of the
    manifest it was applied from (None when someone else made or edited it)."""

    name: str
    revision: str | None = None
    component: str | None = None
    spec_hash: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class ObservedJob(ObservedObject):
    """A Job (a revision's build, or an artifact's cleanup), with its outcome read once from the
    Job and its pods."""

    outcome: JobOutcome = JobRunning()
    # Its pods that finished (Succeeded or Failed) and are not being deleted: once the status
    # records the outcome they go, or they would pin the claims they mount.
    finished_pods: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, kw_only=True)
class ObservedDeployment(ObservedObject):
    """A revision's serving Deployment; `record` is the revision record it carries (see
    recovery.py), `replicas` its spec.replicas (None when not set)."""

    replicas: int | None = None
    ready_replicas: int = 0
    record: str | None = None
    # Why its ReplicaSet cannot create pods (its ReplicaFailure condition, e.g. `FailedCreate: pods
    # "..." is forbidden: exceeded quota: ...`); None when it can.
    replica_failure: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class ObservedPod(ObservedObject):
    """A serving pod: `address` is `http://<podIP>:<port http>` once both are known."""

    ready: bool = False
    terminating: bool = False
    address: str | None = None
    # The serving container's current and last terminated states (a restarted container keeps
    # the last), and how often it restarted.
    terminations: tuple[Terminated, ...] = ()
    restarts: int = 0
    # Why it is not ready when its status says (`Unschedulable: ...`, `ImagePullBackOff: ...`).
    problem: str | None = None
    claims: frozenset[str] = frozenset()  # the PersistentVolumeClaims it mounts


@dataclasses.dataclass(frozen=True)
class SourceObject:
    """One s3:// object of spec.source as the store described it (a HEAD): its `identity`
    (`versionId:<id>` on a versioned bucket, else `etag:<ETag>`), or the `problem` that kept the
    operator from reading it (wrong credentials, no such key, the store unreachable)."""

    identity: str | None = None
    problem: str | None = None


@dataclasses.dataclass(frozen=True)
class Children:
    jobs: Sequence[ObservedJob] = ()
    deployments: Sequence[ObservedDeployment] = ()
    services: Sequence[ObservedObject] = ()
    disruption_budgets: Sequence[ObservedObject] = ()
    serving_pods: Sequence[ObservedPod] = ()  # pods labelled faiss.dev/component=serving
    # The PersistentVolumeClaims the spec references that exist in the namespace; None when not
    # observed (then nothing is said about claims).
    claims: frozenset[str] | None = None
    # Those of them being deleted (deletionTimestamp set): they stay Terminating while pods mount them.
    terminating_claims: frozenset[str] = frozenset()
    # The namespace is being deleted (Terminating): it accepts no new objects, and deletes all it holds.
    namespace_terminating: bool = False
    # The s3:// objects of spec.source (uri, idsUri, metadataUri) by URI, as the store last
    # described them (runtime/source_objects.py); None when not observed: revisions then hash the
    # URI alone.
    source_objects: Mapping[str, SourceObject] | None = None

    def job(self, name: str) -> ObservedJob | None:
        return next((job for job in self.jobs if job.name == name), None)

    def deployment(self, revision: str) -> ObservedDeployment | None:
        return next((d for d in self.deployments if d.revision == revision), None)

    def ready_replicas(self, revision: str) -> int:
        deployment = self.deployment(revision)
        return 0 if deployment is None else deployment.ready_replicas
