"""The build Job's report: the JSON its container writes as the Kubernetes termination message.

builder/ writes it (builder/report.py keeps it under TERMINATION_MESSAGE_LIMIT) at TERMINATION_LOG;
controller/ sets that path on the build container and reads the message back with `parse_report`.
The builder writes snake_case keys; a few spellings are accepted for each so that the controller
and the builder can evolve apart, but a report without vectors, recall or p99 is refused: a
revision's gates cannot be judged without them.
"""

from __future__ import annotations

import json
from typing import Any

import pydantic

# Kubernetes keeps at most this many bytes of a container's termination message.
TERMINATION_MESSAGE_LIMIT = 4096
# Where the build container writes it (the kubelet's default terminationMessagePath).
TERMINATION_LOG = "/dev/termination-log"


class ReportError(ValueError):
    """The termination message is not a usable report; the message says why."""


def _choices(*names: str) -> pydantic.AliasChoices:
    return pydantic.AliasChoices(*names)


class BuildReport(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore", frozen=True)

    vectors: int = pydantic.Field(ge=0, validation_alias=_choices("vectors", "total_vectors", "num_vectors"))
    recall: float = pydantic.Field(ge=0, le=1, validation_alias=_choices("recall", "recall_at_k", "recall_at_10"))
    k: int | None = pydantic.Field(default=None, ge=1)
    p50_ms: float | None = pydantic.Field(default=None, ge=0, validation_alias=_choices("p50_ms", "p50_latency_ms"))
    p99_ms: float = pydantic.Field(ge=0, validation_alias=_choices("p99_ms", "p99_latency_ms"))
    memory_bytes: int | None = pydantic.Field(default=None, ge=0)
    build_seconds: float | None = pydantic.Field(default=None, ge=0)
    # The build's peak anonymous memory (RssAnon), to size build.resources.limits.memory from;
    # absent from older builders, and None where /proc does not say.
    peak_anon_bytes: int | None = pydantic.Field(default=None, ge=0)
    config: dict[str, Any] | None = pydantic.Field(
        default=None, validation_alias=_choices("config", "effective_config")
    )
    artifact: str | None = pydantic.Field(default=None, validation_alias=_choices("artifact", "artifact_path"))
    # Degenerate data the build passed with (index/data_quality.py); absent from older builders.
    data_quality: dict[str, int] | None = None

    def degenerate_data(self) -> str | None:
        """The Warning Event's message when the build passed with degenerate data, else None."""
        counts = {key: value for key, value in (self.data_quality or {}).items() if value}
        if not counts:
            return None
        said = ", ".join(f"{key.replace('_', ' ')}: {value}" for key, value in sorted(counts.items()))
        return f"built from {self.vectors} vectors with degenerate data ({said}); see README \"Degenerate data\""


def parse_report(message: str | None) -> BuildReport:
    if not message or not message.strip():
        raise ReportError("the build container left no termination message (expected its JSON report)")
    if len(message.encode()) > TERMINATION_MESSAGE_LIMIT:
        raise ReportError(
            f"the report is {len(message.encode())} bytes; at most {TERMINATION_MESSAGE_LIMIT} fit a termination message"
        )
    try:
        document = json.loads(message)
    except json.JSONDecodeError as error:
        raise ReportError(
            f"the termination message is not JSON ({error.msg} at position {error.pos}): {message[:120]!r}"
        ) from None
    if not isinstance(document, dict):
        raise ReportError(f"the report must be a JSON object, got {type(document).__name__}")
    try:
        return BuildReport.model_validate(document)
    except pydantic.ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
        raise ReportError(f"the report is incomplete: {problems}") from None
