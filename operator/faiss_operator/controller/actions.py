"""What the decision asks the Kopf layer to do, and the plan that carries it.

Plain frozen values, applied in order by the layer above; "already exists" on Apply and
"not found" on Delete count as success there.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from faiss_operator.api import status as api_status

Manifest = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Apply:
    """Create or update (server-side apply) one child object."""

    manifest: Manifest

    @property
    def kind(self) -> str:
        return str(self.manifest["kind"])

    @property
    def name(self) -> str:
        return str(self.manifest["metadata"]["name"])


@dataclasses.dataclass(frozen=True)
class Delete:
    api_version: str
    kind: str
    name: str


@dataclasses.dataclass(frozen=True)
class RemoveAnnotation:
    """An admin annotation was acted on (or refused with an Event); remove it from the resource."""

    key: str


@dataclasses.dataclass(frozen=True)
class AddFinalizer:
    name: str


@dataclasses.dataclass(frozen=True)
class RemoveFinalizer:
    name: str


@dataclasses.dataclass(frozen=True)
class Analyze:
    """Probe candidate and stable pods with the candidate's stored query sample, then decide again."""

    candidate: str
    stable: str | None  # None on a first deploy: nothing serves to compare with
    step: int
    artifact: str
    k: int


Action = Apply | Delete | RemoveAnnotation | AddFinalizer | RemoveFinalizer | Analyze


@dataclasses.dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclasses.dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]
    status: api_status.FaissIndexStatus
    status_changed: bool
    # The merge patch (RFC 7386) of the status subresource that writes `status`; {} if unchanged.
    status_patch: dict[str, Any] = dataclasses.field(default_factory=dict)
    events: tuple[Event, ...] = ()
    requeue_after: float | None = None
