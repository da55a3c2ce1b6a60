"""The FaissIndex status: what the operator observed and decided, as users read it.

Timestamps are RFC 3339 in UTC with second precision, as Kubernetes writes them, so a status read
back from the API server compares equal to the one that was written. Unknown fields are ignored
(not refused): a status written by an older or newer operator, or with fields another tool added,
still reads, so that the operator never mistakes it for a lost status.
"""

from __future__ import annotations

import datetime
from typing import Annotated, Any, Literal, NewType

import pydantic

from faiss_operator.api import naming
from faiss_operator.index import config as index_config


def _rfc3339(value: datetime.datetime) -> str:
    return value.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


Timestamp = Annotated[
    datetime.datetime,
    pydantic.AfterValidator(
        lambda v: (v if v.tzinfo else v.replace(tzinfo=datetime.timezone.utc)).replace(microsecond=0)
    ),
    pydantic.PlainSerializer(_rfc3339, return_type=str, when_used="json"),
]

# A revision's name: a hash of the spec fields that define it (see controller.revisions).
Revision = NewType("Revision", str)

Phase = Literal["Pending", "Building", "Deploying", "Ready", "Degraded", "Progressing", "RollingBack", "Failed"]
RevisionState = Literal[
    "Building", "Built", "Canary", "Active", "Retired", "Failed", "RolledBack", "Superseded"
]
ConditionStatus = Literal["True", "False", "Unknown"]
RolloutMode = Literal["Deploy", "Canary", "Rollback"]
# Why a rollout waits: for faiss.dev/promote at a step without pauseSeconds, for spec.paused to be
# cleared, or for an admin after a failure (onFailure: Pause, or a stalled rollback).
PauseReason = Literal["AwaitingPromotion", "SpecPaused", "Failure"]
_LEGACY_PAUSE_TEXT = {
    "step without pauseSeconds: annotate faiss.dev/promote=true to continue": "AwaitingPromotion",
    "spec.paused is true": "SpecPaused",
}


class StatusModel(naming.WireModel):
    """Base of the status models: like every wire model, but unknown fields are ignored."""

    model_config = pydantic.ConfigDict(extra="ignore")


def _keyed_by(key: str) -> dict[str, pydantic.JsonValue]:
    """A list whose items are identified by `key`, so server-side apply merges them by it."""
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": [key]}


class Condition(StatusModel):
    """metav1.Condition."""

    type: Annotated[str, pydantic.Field(max_length=316)]
    status: ConditionStatus
    reason: Annotated[str, pydantic.Field(max_length=1024)]
    message: Annotated[str, pydantic.Field(max_length=32768)] = ""
    last_transition_time: Timestamp
    observed_generation: Annotated[int | None, pydantic.Field(ge=0)] = None


class RevisionMetrics(StatusModel):
    """Measured by the build Job (or, for a revision that reuses an artifact, live at its canary)."""

    vectors: int | None = None
    k: int | None = None
    recall: float | None = None
    p50_latency_ms: float | None = None
    p99_latency_ms: float | None = None
    memory_bytes: int | None = None
    build_seconds: float | None = None


# A revision's config that no longer reads as the typed config of its index type (written by
# another operator version, or edited by hand): kept exactly as stored, so that a status written
# back loses nothing, and served with the parameters its artifact holds.
UnreadableConfig = dict[str, Any]


class RevisionStatus(StatusModel):
    """One revision in the history, newest first."""

    name: Revision
    index_type: str
    config: index_config.IndexConfig | UnreadableConfig = pydantic.Field(
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
    source_objects: dict[str, str] | None = pydantic.Field(
        default=None,
        description="the identity (versionId:<id> or etag:<ETag>) of each s3:// source object the revision "
        "was made from, by spec field (source.uri, source.idsUri, source.metadataUri); unset when the source "
        "has no s3:// object",
    )
    created_at: Timestamp
    promoted_at: Timestamp | None = pydantic.Field(
        default=None,
        description="when this revision last became Active (took all traffic); unset for one that never served",
    )

    @pydantic.field_validator("config", mode="plain", json_schema_input_type=dict[str, Any])
    @classmethod
    def _typed_config(cls, config: Any, info: pydantic.ValidationInfo) -> Any:
        # The typed config of the sibling indexType, read from its camelCase form (what every
        # operator version wrote); anything else stays as stored (UnreadableConfig).
        if isinstance(config, index_config.CONFIG_TYPES):
            return config
        if not isinstance(config, dict):
            raise ValueError(f"expected an object, got {type(config).__name__}")
        try:
            return index_config.parse_wire_config(info.data.get("index_type", ""), config)
        except (index_config.ConfigError, pydantic.ValidationError):
            return dict(config)

    @pydantic.field_serializer("config")
    def _config_in_camel_case(self, config: index_config.IndexConfig | UnreadableConfig) -> dict[str, Any]:
        return config.to_wire() if isinstance(config, index_config.CONFIG_TYPES) else dict(config)

    def typed_config(self) -> index_config.IndexConfig | None:
        """The revision's typed config; None when it no longer reads (UnreadableConfig)."""
        return self.config if isinstance(self.config, index_config.CONFIG_TYPES) else None


class RolloutStatus(StatusModel):
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
    pause_reason: PauseReason | None = None
    pause_message: str | None = None
    unready_since: Timestamp | None = pydantic.Field(
        default=None,
        description="when the step, once ready, lost a ready replica; progressDeadlineSeconds counts from here",
    )

    @pydantic.model_validator(mode="before")
    @classmethod
    def _legacy_pause_reason(cls, raw: Any) -> Any:
        """An older operator wrote the pause reason as free text: read it as the typed reason."""
        if isinstance(raw, dict):
            reason = raw.get("pauseReason", raw.get("pause_reason"))
            if isinstance(reason, str) and reason not in ("AwaitingPromotion", "SpecPaused", "Failure"):
                raw = {k: v for k, v in raw.items() if k not in ("pauseReason", "pause_reason")}
                raw["pauseReason"] = _LEGACY_PAUSE_TEXT.get(reason, "Failure")
                if raw["pauseReason"] == "Failure":
                    raw.setdefault("pauseMessage", reason)
        return raw


class ScaleDown(StatusModel):
    """A replaced revision whose Deployment keeps serving until `after` (scaleDownDelaySeconds)."""

    revision: Revision
    after: Timestamp


class FaissIndexStatus(StatusModel):
    observed_generation: int | None = None
    phase: Phase = "Pending"
    index_type: str | None = None
    current_revision: Revision | None = None
    candidate_revision: Revision | None = None
    rollout: RolloutStatus | None = None
    recall: float | None = None
    p99_latency_ms: float | None = None
    revisions: list[RevisionStatus] = pydantic.Field(default_factory=list, json_schema_extra=_keyed_by("name"))
    scale_downs: list[ScaleDown] = pydantic.Field(default_factory=list, json_schema_extra=_keyed_by("revision"))
    conditions: list[Condition] = pydantic.Field(default_factory=list, json_schema_extra=_keyed_by("type"))
    handled_annotations: dict[str, str] = pydantic.Field(
        default_factory=dict,
        description="the admin annotations (key: value) already acted on; an entry goes once its annotation is "
        "gone, so the same value set again later acts again",
    )

    def revision(self, name: str | None) -> RevisionStatus | None:
        return next((entry for entry in self.revisions if entry.name == name), None)
