"""Builders for the controller's tests: resources, live children, and a tiny simulated cluster.

The simulated cluster only stores what the plan applies and lets a test say "this Job finished"
or "these replicas are ready"; it exists to feed the pure decision its own outputs back.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import json
from collections.abc import Mapping
from typing import Any

from faiss_operator.api import resource as api_resource
from faiss_operator.api import status as api_status
from faiss_operator.controller.decision import actions, analysis, decide, manifests, observed, revisions
from faiss_operator.controller.runtime import child_views
from faiss_operator.controller.decision import settings as operator_settings

UTC = datetime.timezone.utc
T0 = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
SETTINGS = operator_settings.OperatorSettings(image="registry.example/faiss-operator:test")
NAME = "alerts"
NAMESPACE = "search"


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


def spec(**overrides: Any) -> dict[str, Any]:
    """A valid wire-form spec; keyword arguments replace top-level keys (camelCase)."""
    base: dict[str, Any] = {
        "dimension": 8,
        "indexType": "HNSW",
        "config": {"m": 16, "efConstruction": 100, "efSearch": 32},
        "source": {"uri": "pvc://embeddings/alerts/v1.npy"},
        "evaluation": {"k": 10, "queries": 100, "minRecall": 0.9, "maxP99LatencyMs": 5.0},
        "serving": {"replicas": 4},
        "rollout": {
            "steps": [{"weight": 25, "pauseSeconds": 60}, {"weight": 50, "pauseSeconds": 60}],
            "progressDeadlineSeconds": 300,
            "scaleDownDelaySeconds": 30,
            "revisionHistoryLimit": 2,
        },
    }
    base.update(overrides)
    return base


def with_config(wire: dict[str, Any], **config: Any) -> dict[str, Any]:
    return {**wire, "config": {**wire.get("config", {}), **config}}


def revision_of(wire: dict[str, Any]) -> str:
    return revisions.desired_revision(api_resource.parse_spec(wire), SETTINGS, index_name=NAME).name


def artifact_key_of(wire: dict[str, Any]) -> str:
    return revisions.desired_revision(api_resource.parse_spec(wire), SETTINGS, index_name=NAME).artifact_key


def make_resource(
    wire: dict[str, Any],
    status: api_status.FaissIndexStatus | None = None,
    *,
    annotations: dict[str, str] | None = None,
    generation: int = 1,
    finalizers: tuple[str, ...] = (api_resource.FINALIZER,),
    deleting: bool = False,
) -> api_resource.Resource:
    return api_resource.Resource(
        name=NAME,
        namespace=NAMESPACE,
        uid="uid-1",
        generation=generation,
        spec=wire,
        status=status or api_status.FaissIndexStatus(),
        annotations=annotations or {},
        finalizers=finalizers,
        deletion_timestamp=T0 if deleting else None,
    )


def report(**overrides: Any) -> str:
    values: dict[str, Any] = {
        "vectors": 5000,
        "recall": 0.97,
        "k": 10,
        "p50_ms": 0.2,
        "p99_ms": 0.9,
        "memory_bytes": 123456,
        "build_seconds": 4.5,
        "config": {"m": 16},
        "artifact": "/mnt/pvc/faiss-artifacts/alerts/x",
    }
    values.update(overrides)
    return json.dumps({k: v for k, v in values.items() if v is not None})


def passing(revision: str, step: int, when: datetime.datetime, **probe: Any) -> analysis.Measurement:
    values: dict[str, Any] = {"samples": 100, "recall": 0.96, "p99_latency_ms": 1.0, "p50_latency_ms": 0.4}
    values.update(probe)
    return analysis.Measurement(
        revision=revision,
        step=step,
        taken_at=when,
        candidate=analysis.Probe(**values),
        stable=analysis.Probe(samples=100, recall=0.97, p99_latency_ms=1.0),
    )


# --- a summary of a plan, so that a test can state the whole expected plan in a few lines ---


@dataclasses.dataclass(frozen=True)
class Summary:
    actions: tuple[tuple[Any, ...], ...]
    phase: str
    current: str | None
    candidate: str | None
    rollout: tuple[Any, ...] | None
    revisions: tuple[tuple[str, str], ...]


def summarize_action(action: actions.Action) -> tuple[Any, ...]:
    if isinstance(action, actions.Apply):
        if action.kind == "Deployment":
            return ("Apply", "Deployment", action.name, action.manifest["spec"]["replicas"])
        return ("Apply", action.kind, action.name)
    if isinstance(action, actions.Delete):
        return ("Delete", action.kind, action.name)
    if isinstance(action, actions.RemoveAnnotation):
        return ("RemoveAnnotation", action.key)
    if isinstance(action, (actions.AddFinalizer, actions.RemoveFinalizer)):
        return (type(action).__name__, action.name)
    return ("Analyze", action.candidate, action.step)


def summarize(plan: actions.Plan) -> Summary:
    status = plan.status
    rollout = status.rollout
    return Summary(
        actions=tuple(summarize_action(a) for a in plan.actions),
        phase=status.phase,
        current=status.current_revision,
        candidate=status.candidate_revision,
        rollout=(
            None if rollout is None else (rollout.mode, rollout.step, rollout.weight, rollout.promoting, rollout.paused)
        ),
        revisions=tuple((e.name, e.state) for e in status.revisions),
    )


def relabel(value: Any, labels: Mapping[str, str]) -> Any:
    """`value` (a string, or tuples of them) with each revision name replaced by its label (R1, ...),
    so that expectations read as names instead of hashes."""
    if isinstance(value, str):
        for name, label in labels.items():
            value = value.replace(name, label)
        return value
    if isinstance(value, tuple):
        return tuple(relabel(v, labels) for v in value)
    return value


def relabel_summary(summary: Summary, labels: Mapping[str, str]) -> Summary:
    return Summary(*(relabel(getattr(summary, f.name), labels) for f in dataclasses.fields(summary)))


# --- a simulated cluster: stores applied children, lets tests finish Jobs and ready replicas ---


@dataclasses.dataclass
class Cluster:
    wire: dict[str, Any]
    status: api_status.FaissIndexStatus = dataclasses.field(default_factory=api_status.FaissIndexStatus)
    annotations: dict[str, str] = dataclasses.field(default_factory=dict)
    finalizers: tuple[str, ...] = ()
    generation: int = 1
    objects: dict[tuple[str, str], dict[str, Any]] = dataclasses.field(default_factory=dict)
    pods: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    serving_pods: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    deleting: bool = False
    namespace_terminating: bool = False
    # What the store says of the spec's s3:// source objects (runtime/source_objects.py), by URI.
    source_objects: dict[str, observed.SourceObject] | None = None

    def resource(self) -> api_resource.Resource:
        return make_resource(
            self.wire,
            self.status,
            annotations=dict(self.annotations),
            generation=self.generation,
            finalizers=self.finalizers,
            deleting=self.deleting,
        )

    def children(self) -> observed.Children:
        def of(kind: str) -> list[dict[str, Any]]:
            # As in a list response, the items carry no kind or apiVersion.
            return [
                {k: v for k, v in copy.deepcopy(o).items() if k not in ("kind", "apiVersion")}
                for (k, _), o in sorted(self.objects.items())
                if k == kind
            ]

        found = child_views.children(
            jobs=of("Job"),
            pods=copy.deepcopy(self.pods + self.serving_pods),
            deployments=of("Deployment"),
            services=of("Service"),
            disruption_budgets=of("PodDisruptionBudget"),
            namespace_terminating=self.namespace_terminating,
        )
        return dataclasses.replace(found, source_objects=self.source_objects)

    def reconcile(self, now: datetime.datetime, measurements: tuple[analysis.Measurement, ...] = ()) -> actions.Plan:
        plan = decide.decide(self.resource(), self.children(), measurements, now, settings=SETTINGS)
        self.apply(plan)
        return plan

    def apply(self, plan: actions.Plan) -> None:
        for action in plan.actions:
            if isinstance(action, actions.Apply):
                key = (action.kind, action.name)
                live = copy.deepcopy(action.manifest)
                live["status"] = self.objects.get(key, {}).get("status", {})
                self.objects[key] = live
            elif isinstance(action, actions.Delete) and action.kind == "Pod":
                self.pods = [p for p in self.pods if p["metadata"]["name"] != action.name]
            elif isinstance(action, actions.Delete):
                self.objects.pop((action.kind, action.name), None)
            elif isinstance(action, actions.RemoveAnnotation):
                self.annotations.pop(action.key, None)
            elif isinstance(action, actions.AddFinalizer):
                self.finalizers = (*self.finalizers, action.name)
            elif isinstance(action, actions.RemoveFinalizer):
                self.finalizers = tuple(f for f in self.finalizers if f != action.name)
        if plan.status_changed:
            self.status = api_status.FaissIndexStatus.model_validate(plan.status.to_wire())

    # What the cluster does on its own.

    def finish_job(
        self,
        revision: str,
        *,
        message: str | None = None,
        failed: str | None = None,
        completed_at: datetime.datetime | None = None,
        pod_seen: bool = True,
        terminated: dict[str, Any] | None = None,
    ) -> None:
        """`terminated`: the failed pod's container state instead of exit code 3 with `failed`."""
        (key, job) = next(
            (k, o)
            for k, o in self.objects.items()
            if k[0] == "Job" and o["metadata"]["labels"].get(manifests.LABEL_REVISION) == revision
        )
        name = key[1]
        if failed is None:
            job["status"] = {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
            if completed_at is not None:
                job["status"]["completionTime"] = completed_at.strftime("%Y-%m-%dT%H:%M:%SZ")
            phase, terminated = "Succeeded", {"exitCode": 0, "message": message}
        else:
            job["status"] = {
                "failed": 2,
                "conditions": [
                    {
                        "type": "Failed",
                        "status": "True",
                        "reason": "BackoffLimitExceeded",
                        "message": "Job has reached the specified backoff limit",
                    }
                ],
            }
            terminated = terminated or {"exitCode": 3, "reason": "Error", "message": failed}
            phase = "Failed"
        if not pod_seen:
            return
        self.pods.append(
            {
                "metadata": {"name": f"{name}-pod", "labels": {manifests.LABEL_BUILD_JOB: name}},
                "status": {
                    "phase": phase,
                    "containerStatuses": [{"name": manifests.BUILD_CONTAINER, "state": {"terminated": terminated}}],
                },
            }
        )

    def show_build_pod(self, revision: str, message: str) -> None:
        """The pod of a complete Job, observed late."""
        name = next(
            n
            for (k, n), o in self.objects.items()
            if k == "Job" and o["metadata"]["labels"].get(manifests.LABEL_REVISION) == revision
        )
        self.pods.append(
            {
                "metadata": {"name": f"{name}-pod", "labels": {manifests.LABEL_BUILD_JOB: name}},
                "status": {
                    "phase": "Succeeded",
                    "containerStatuses": [
                        {"name": manifests.BUILD_CONTAINER, "state": {"terminated": {"exitCode": 0, "message": message}}}
                    ],
                },
            }
        )

    def ready(self, revision: str, count: int | None = None) -> None:
        deployment = self.objects[("Deployment", manifests.deployment_name(NAME, revision))]
        wanted = deployment["spec"]["replicas"] if count is None else count
        deployment["status"] = {"replicas": deployment["spec"]["replicas"], "readyReplicas": wanted}

    def ready_all(self) -> None:
        for (kind, _), obj in self.objects.items():
            if kind == "Deployment":
                obj["status"] = {"replicas": obj["spec"]["replicas"], "readyReplicas": obj["spec"]["replicas"]}

    def snapshot(self) -> Cluster:
        return copy.deepcopy(self)
