"""The FaissIndex status: what the operator observed and decided, as users read it.

Timestamps are RFC 3339 in UTC with second precision, as Kubernetes writes them, so a status read
back from the API server compares equal to the one that was written.
"""

from __future__ import annotations

import datetime
from typing import Annotated, Any, Literal

import pydantic

from faiss_operator.api import naming


def _rfc3339(value: datetime.datetime) -> str:
    return value.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


Timestamp = Annotated[
    datetime.datetime,
    pydantic.AfterValidator(
        lambda v: (v if v.tzinfo else v.replace(tzinfo=datetime.timezone.utc)).replace(microsecond=0)
    ),
    pydantic.PlainSerializer(_rfc3339, return_type=str, when_used="json"),
]

Phase = Literal["Pending", "Building", "Deploying", "Ready", "Progressing", "RollingBack", "Failed"]
RevisionState = Literal["Building", "Built", "Canary", "Active", "Retired", "Failed", "RolledBack"]
ConditionStatus = Literal["True", "False", "Unknown"]
RolloutMode = Literal["Deploy", "Canary", "Rollback"]


def _keyed_by(key: str) -> dict[str, pydantic.JsonValue]:
    """A list whose items are identified by `key`, so server-side apply merges them by it."""
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": [key]}


class Condition(naming.WireModel):
    """metav1.Condition."""

    type: Annotated[str, pydantic.Field(max_length=316)]
    status: ConditionStatus
    reason: Annotated[str, pydantic.Field(max_length=1024)]
    message: Annotated[str, pydantic.Field(max_length=32768)] = ""
    last_transition_time: Timestamp
    observed_generation: Annotated[int | None, pydantic.Field(ge=0)] = None


class RevisionMetrics(naming.WireModel):
    """Measured by the build Job (or, for a revision that reuses an artifact, live at its canary)."""

    vectors: int | None = None
    k: int | None = None
    recall: float | None = None
    p50_latency_ms: float | None = None
    p99_latency_ms: float | None = None
    memory_bytes: int | None = None
    build_seconds: float | None = None


class RevisionStatus(naming.WireModel):
    """One revision in the history, newest first."""

    name: str
    index_type: str
    config: dict[str, Any] = pydantic.Field(
        default_factory=dict, json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}
    )
    artifact: str
    artifact_key: str
    state: RevisionState
    reason: str | None = None
    message: str | None = None
    metrics: RevisionMetrics | None = None
    reused_from: str | None = pydantic.Field(default=None, description="revision whose built artifact this one serves")
    build_attempt: Annotated[int, pydantic.Field(ge=0)] = 0
    created_at: Timestamp


class RolloutStatus(naming.WireModel):
    """Where the candidate's rollout stands."""

    mode: RolloutMode
    step: Annotated[int, pydantic.Field(ge=0)] = 0
    weight: Annotated[
        int, pydantic.Field(ge=0, le=100, description="the current step's target percentage of replicas")
    ] = 0
    actual_weight: Annotated[
        int | None,
        pydantic.Field(
            ge=0,
            le=100,
            description="the percentage of traffic the candidate really gets: its ready replicas over all "
            "ready serving replicas, rounded down (printed as WEIGHT)",
        ),
    ] = None
    step_started_at: Timestamp
    step_ready_at: Timestamp | None = None
    analysis_passed: bool = False
    analysis_failures: Annotated[int, pydantic.Field(ge=0)] = 0
    last_analysis_at: Timestamp | None = None
    promoting: bool = False
    paused: bool = False
    pause_reason: str | None = None


class ScaleDown(naming.WireModel):
    """A replaced revision whose Deployment keeps serving until `after` (scaleDownDelaySeconds)."""

    revision: str
    after: Timestamp


class FaissIndexStatus(naming.WireModel):
    observed_generation: int | None = None
    phase: Phase = "Pending"
    index_type: str | None = None
    current_revision: str | None = None
    candidate_revision: str | None = None
    rollout: RolloutStatus | None = None
    recall: float | None = None
    p99_latency_ms: float | None = None
    revisions: list[RevisionStatus] = pydantic.Field(default_factory=list, json_schema_extra=_keyed_by("name"))
    scale_downs: list[ScaleDown] = pydantic.Field(default_factory=list, json_schema_extra=_keyed_by("revision"))
    conditions: list[Condition] = pydantic.Field(default_factory=list, json_schema_extra=_keyed_by("type"))

    def revision(self, name: str | None) -> RevisionStatus | None:
        return next((entry for entry in self.revisions if entry.name == name), None)
