"""The FaissIndex resource as a whole: its identity (group, version, names), annotations, and
parsing of the object the API server returns into the spec and status models."""

from __future__ import annotations

import dataclasses
import datetime
import functools
from collections.abc import Mapping
from typing import Any

import pydantic

from faiss_operator.api import naming
from faiss_operator.api import spec as api_spec
from faiss_operator.api import status as api_status

GROUP = "faiss.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "FaissIndex"
PLURAL = "faissindexes"
SINGULAR = "faissindex"
SHORT_NAMES = ("fi", "faissidx")
CRD_NAME = f"{PLURAL}.{GROUP}"

ANNOTATION_PROMOTE = f"{GROUP}/promote"
ANNOTATION_ABORT = f"{GROUP}/abort"
ANNOTATION_ROLLBACK = f"{GROUP}/rollback"
ANNOTATION_RETRY = f"{GROUP}/retry"
ADMIN_ANNOTATIONS = (ANNOTATION_PROMOTE, ANNOTATION_ABORT, ANNOTATION_ROLLBACK, ANNOTATION_RETRY)
ROLLBACK_PREVIOUS = "previous"

FINALIZER = f"{GROUP}/cleanup"


class SpecError(ValueError):
    """A spec the operator cannot act on; the message says what to change."""


def describe_validation_error(error: pydantic.ValidationError, *, prefix: str = "spec") -> str:
    """One line per problem, each naming the camelCase field: `spec.config.efSearch: ...`."""
    problems = []
    for item in error.errors():
        loc, message = naming.located(item, api_spec.FaissIndexSpec)
        if loc:
            problems.append(f"{'.'.join([prefix, *(str(part) for part in loc)])}: {message}")
        else:  # a model-level rule; its message starts with the field it is about
            problems.append(f"{prefix}.{message}")
    return "; ".join(problems)


def parse_spec(raw: Mapping[str, Any]) -> api_spec.FaissIndexSpec:
    try:
        return api_spec.FaissIndexSpec.from_wire(raw)
    except pydantic.ValidationError as error:
        raise SpecError(describe_validation_error(error)) from None


def parse_status(raw: Mapping[str, Any] | None) -> api_status.FaissIndexStatus:
    """The stored status; one that no longer parses (hand-edited, older schema) starts afresh."""
    try:
        return api_status.FaissIndexStatus.model_validate(raw or {})
    except pydantic.ValidationError:
        return api_status.FaissIndexStatus()


@dataclasses.dataclass(frozen=True)
class Resource:
    """The parts of a FaissIndex object that the controller reads."""

    name: str
    namespace: str
    uid: str
    generation: int
    spec: Mapping[str, Any]
    status: api_status.FaissIndexStatus
    annotations: Mapping[str, str] = dataclasses.field(default_factory=dict)
    finalizers: tuple[str, ...] = ()
    deletion_timestamp: datetime.datetime | None = None

    @functools.cached_property
    def parsed_spec(self) -> api_spec.FaissIndexSpec | SpecError:
        """The spec parsed once for every reader of this object in a pass (observe, decide): the
        model, or the error that says what to change."""
        try:
            return parse_spec(self.spec)
        except SpecError as error:
            return error

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Resource:
        metadata = body.get("metadata") or {}
        deleted = metadata.get("deletionTimestamp")
        return cls(
            name=metadata["name"],
            namespace=metadata.get("namespace", "default"),
            uid=metadata.get("uid", ""),
            generation=int(metadata.get("generation", 0)),
            spec=body.get("spec") or {},
            status=parse_status(body.get("status")),
            annotations=dict(metadata.get("annotations") or {}),
            finalizers=tuple(metadata.get("finalizers") or ()),
            deletion_timestamp=(datetime.datetime.fromisoformat(deleted.replace("Z", "+00:00")) if deleted else None),
        )
