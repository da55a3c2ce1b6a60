"""Read one FaissIndex fresh from the API server, with its children and the claims it mounts.

Every reconcile starts here, never from a watch event's body: the decision is level-triggered,
so it needs the state as it is now. The lists run concurrently in worker threads.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from typing import Any

from faiss_operator.api import resource as api_resource
from faiss_operator.controller.decision import claims, manifests
from faiss_operator.controller.decision import observed
from faiss_operator.controller.runtime import child_views, kube_api


@dataclasses.dataclass(frozen=True)
class Observation:
    body: Mapping[str, Any]  # the FaissIndex as the API server returned it
    resource: api_resource.Resource
    children: observed.Children


async def observe(api: kube_api.KubeApi, namespace: str, name: str) -> Observation | None:
    """The FaissIndex `namespace/name` and what it owns; None when the FaissIndex is gone.

    Raises the client's API and transport errors (kube_api.retryable says which are passing).
    """
    body = await asyncio.to_thread(api.get_index, namespace, name)
    if body is None:
        return None
    selector = manifests.children_selector(name)
    jobs, pods, deployments, services, budgets = await asyncio.gather(
        *(asyncio.to_thread(api.list_children, version, kind, namespace, selector) for version, kind in kube_api.CHILD_KINDS)
    )
    resource = api_resource.Resource.from_body(body)
    found_claims = await _claims(api, namespace, resource)
    children = child_views.children(
        jobs=jobs, pods=pods, deployments=deployments, services=services, disruption_budgets=budgets, claims=found_claims
    )
    return Observation(body=body, resource=resource, children=children)


async def _claims(api: kube_api.KubeApi, namespace: str, resource: api_resource.Resource) -> frozenset[str] | None:
    """The referenced claims that exist; None when the spec does not parse (decide refuses it)."""
    spec = resource.parsed_spec
    if isinstance(spec, api_resource.SpecError):
        return None
    names = sorted(claims.referenced(spec))
    exists = await asyncio.gather(*(asyncio.to_thread(api.claim_exists, namespace, claim) for claim in names))
    return frozenset(claim for claim, present in zip(names, exists, strict=True) if present)
