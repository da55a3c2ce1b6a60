"""What the decision asks the Kopf layer to do, and the plan that carries it.

Plain frozen values, applied by the layer above; "already exists" on Apply and "not found" on
Delete count as success there.

The WRITE ORDER for one plan (the Kopf layer keeps it):

1. the status patch (a merge patch on the status subresource), when `status_changed`;
2. AddFinalizer actions (one metadata patch), before any child the finalizer cleans up exists;
3. Apply / Delete / Analyze actions, in plan order (Analyze: run the prober, then decide again);
4. RemoveAnnotation actions (one metadata patch);
5. RemoveFinalizer actions;
6. Events, only once the writes succeeded.

The status records what was decided, including which admin annotation values were acted on
(status.handledAnnotations), and lands before the annotation is removed. So losing the removal is
harmless (the annotation is seen again with its value recorded: it is only removed again), and so
is losing the status write (the annotation is still there, the status still the old one: the same
decision is taken again).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from faiss_operator.api import status as api_status

Revision = api_status.Revision
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

    candidate: Revision
    stable: Revision | None  # None on a first deploy: nothing serves to compare with
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
