"""Read one FaissIndex, with its children and the claims it mounts, from the watch-fed caches.

Every reconcile starts here, never from a watch event's body: the decision is level-triggered,
so it needs the whole state, as the watches last saw it (caches.py). Reading sends no request.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from faiss_operator.api import resource as api_resource
from faiss_operator.controller.decision import claims, manifests
from faiss_operator.controller.decision import observed
from faiss_operator.controller.runtime import child_views


@dataclasses.dataclass(frozen=True)
class Observation:
    body: Mapping[str, Any]  # the FaissIndex as the API server returned it
    resource: api_resource.Resource
    children: observed.Children


class Reader(Protocol):
    """Where a pass reads (caches.Caches); every method is a memory read."""

    def index(self, namespace: str, name: str) -> Mapping[str, Any] | None: ...

    def children(self, plural: str, namespace: str, index_label: str) -> Sequence[Mapping[str, Any]]: ...

    def claim(self, namespace: str, name: str) -> Mapping[str, Any] | None: ...

    def namespace_terminating(self, namespace: str) -> bool: ...


def observe(reader: Reader, namespace: str, name: str) -> Observation | None:
    """The FaissIndex `namespace/name` and what it owns; None when the FaissIndex is gone."""
    body = reader.index(namespace, name)
    if body is None:
        return None
    label = manifests.label_value(name)
    jobs, pods, deployments, services, budgets = (
        [dict(child) for child in reader.children(plural, namespace, label)]
        for plural in ("jobs", "pods", "deployments", "services", "poddisruptionbudgets")
    )
    resource = api_resource.Resource.from_body(body)
    found_claims, terminating = _claims(reader, namespace, resource)
    children = child_views.children(
        jobs=jobs, pods=pods, deployments=deployments, services=services, disruption_budgets=budgets, claims=found_claims,
        terminating_claims=terminating, namespace_terminating=reader.namespace_terminating(namespace),
    )  # fmt: skip
    return Observation(body=body, resource=resource, children=children)


def _claims(
    reader: Reader, namespace: str, resource: api_resource.Resource
) -> tuple[frozenset[str] | None, frozenset[str]]:
    """The referenced claims that exist (None when the spec does not parse: decide refuses it),
    and those of them being deleted (metadata.deletionTimestamp set: held by the pods that mount it)."""
    spec = resource.parsed_spec
    if isinstance(spec, api_resource.SpecError):
        return None, frozenset()
    found = {name: claim for name in claims.referenced(spec) if (claim := reader.claim(namespace, name)) is not None}
    return (
        frozenset(found),
        frozenset(name for name, claim in found.items() if (claim.get("metadata") or {}).get("deletionTimestamp")),
    )
