"""The Kopf handlers: watch events become triggers of the per-index reconcile loop.

Only `@kopf.on.event` handlers are registered (plus startup and cleanup). They store nothing:
Kopf keeps no progress and no diff-base for them and adds no finalizer of its own, so Kopf never
writes to a FaissIndex (its status schema would drop Kopf's `status.kopf` anyway, see Kopf's
"Patching failed with inconsistencies"). As a guard should a state-keeping handler ever be
added, the startup handler points Kopf's progress and diff-base storage at annotations
(`kopf.faiss.dev/...`), never at `status`. The operator's own finalizer `faiss.dev/cleanup` is
written by the reconcile, as decided by `decide()`.

The child watches are filtered by the API server (`settings.watching.label_selectors`): only
objects labelled `faiss.dev/index` are streamed to the operator. The same watches fill the
caches a pass reads (caches.py): Kopf indexes, handed to the reconciler's `Caches` at startup.
Every watch request has explicit
timeouts (`WatchTimeouts`): without them a watch whose connection died silently (a load balancer
dropping it, no FIN) can wait for events forever (nolar/kopf#585).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import socket
from collections.abc import Mapping
from typing import Any, cast

import kopf

from faiss_operator.api import resource as api_resource
from faiss_operator.controller.decision import actions as plan_actions
from faiss_operator.controller.decision import manifests
from faiss_operator.controller.runtime import caches, kube_api
from faiss_operator.controller.runtime import reconciler as reconciling

STATE_PREFIX = "kopf.faiss.dev"
API_THREADS = kube_api.CONNECTIONS  # worker threads for the blocking client calls (asyncio.to_thread)
# What Kopf watches, as RBAC (API group, resource, verbs); kube_api.CALLS lists the rest.
CHILD_WATCHES: tuple[tuple[str, str, str], ...] = caches.CHILD_RESOURCES
CLAIM_WATCH = caches.CLAIM_RESOURCE
NAMESPACE_WATCH = caches.NAMESPACE_RESOURCE
WATCHED: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (api_resource.GROUP, api_resource.PLURAL, ("list", "watch")),
    *((group, plural, ("list", "watch")) for group, _, plural in (*CHILD_WATCHES, CLAIM_WATCH)),
    ("", "events", ("create", "patch")),
    # Kopf's discovery of resources and namespaces
    ("apiextensions.k8s.io", "customresourcedefinitions", ("list", "watch")),
    ("", "namespaces", ("list", "watch")),
)


@dataclasses.dataclass(frozen=True)
class WatchTimeouts:
    """How long one watch request may last. The API server ends it after `server_seconds`
    (the request's timeoutSeconds) and Kopf starts the next one from where it stopped; the
    client gives up on it after `client_seconds` (more than `server_seconds`, so an answering
    server always ends it first) and on connecting after `connect_seconds`."""

    server_seconds: int = 300  # the API server takes whole seconds only (400 Bad Request otherwise)
    client_seconds: float = 330.0
    connect_seconds: float = 30.0

    def problem(self) -> str | None:
        """Why these timeouts cannot work together, or None."""
        if self.client_seconds <= self.server_seconds:
            return (
                f"the client timeout ({self.client_seconds:g}s) must be longer than the server timeout "
                f"({self.server_seconds}s), or every watch is cut by the client before the server ends it"
            )
        return None


def configure_kopf(settings: kopf.OperatorSettings, timeouts: WatchTimeouts = WatchTimeouts()) -> None:
    """Kopf's settings for this operator (called from the startup handler; changes only `settings`)."""
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=STATE_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=STATE_PREFIX, key="last-handled-configuration"
    )
    for group, version, plural in CHILD_WATCHES:
        settings.watching.label_selectors[group, version, plural] = manifests.LABEL_INDEX
    settings.watching.server_timeout = timeouts.server_seconds
    settings.watching.client_timeout = timeouts.client_seconds
    settings.watching.connect_timeout = timeouts.connect_seconds
    settings.posting.level = logging.INFO  # kopf.event() posts Normal Events too
    # `kubectl describe` shows who reported an Event (FROM): the operator, not the framework.
    settings.posting.reporting_component = "faiss-operator"
    settings.posting.reporting_instance = socket.gethostname()
    settings.posting.event_name_prefix = "faiss-operator-"


def post_event(body: Mapping[str, Any], event: plan_actions.Event) -> None:
    """Queue an Event about the FaissIndex `body` (Kopf posts it, retrying, in the background)."""
    kopf.event(kopf.Body(cast(kopf.RawBody, dict(body))), type=event.type, reason=event.reason, message=event.message)


def register(
    registry: kopf.OperatorRegistry,
    reconciler: reconciling.Reconciler,
    cache: caches.Caches,
    *,
    timeouts: WatchTimeouts = WatchTimeouts(),
) -> None:
    """Register the handlers that feed `reconciler`, and the indexes behind `cache`, on `registry`."""
    caches.register(registry)

    # All handlers are coroutines: Kopf runs them on its event loop, where the reconciler's
    # events and tasks live (a plain function would run in Kopf's thread pool).
    @kopf.on.startup(registry=registry)
    async def configure(settings: kopf.OperatorSettings, **kwargs: Any) -> None:
        configure_kopf(settings, timeouts)
        cache.attach_kopf(kwargs)  # the indexes are empty now; Kopf fills them before any pass
        asyncio.get_running_loop().set_default_executor(
            concurrent.futures.ThreadPoolExecutor(max_workers=API_THREADS, thread_name_prefix="kube-api")
        )

    # A registry of our own has no default login: log in as the official client does
    # (kubeconfig from $KUBECONFIG, or the pod's ServiceAccount in the cluster).
    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return kopf.login_via_client(**kwargs)

    @kopf.on.event(api_resource.GROUP, api_resource.VERSION, api_resource.PLURAL, registry=registry)
    async def index_event(namespace: str | None, name: str | None, **_: Any) -> None:
        if namespace and name:
            reconciler.index_seen(namespace, name)

    async def child_event(namespace: str | None, labels: Mapping[str, str], **_: Any) -> None:
        value = labels.get(manifests.LABEL_INDEX)
        if namespace and value:
            reconciler.child_changed(namespace, value)

    for group, version, plural in CHILD_WATCHES:
        kopf.on.event(
            group, version, plural, labels={manifests.LABEL_INDEX: kopf.PRESENT}, registry=registry, id=f"child-{plural}"
        )(child_event)

    @kopf.on.event(*CLAIM_WATCH, registry=registry)
    async def claim_event(namespace: str | None, **_: Any) -> None:
        if namespace:
            reconciler.namespace_changed(namespace)

    # A namespace being deleted: every FaissIndex in it releases its finalizer at once (decide.py).
    @kopf.on.event(*NAMESPACE_WATCH, registry=registry)
    async def namespace_event(name: str | None, **_: Any) -> None:
        if name:
            reconciler.namespace_changed(name)

    @kopf.on.cleanup(registry=registry)
    async def stop(**_: Any) -> None:
        await reconciler.stop()
