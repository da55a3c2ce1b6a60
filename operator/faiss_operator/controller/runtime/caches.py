"""Watch-fed in-memory caches: what a reconcile pass reads instead of asking the API server.

A pass used to GET its FaissIndex and LIST six kinds of children, so the API load grew with
(indexes x passes). Now Kopf's watches fill one Kopf index (`kopf.index`) per kind, keyed by
FaissIndex: the FaissIndex objects by (namespace, name), their children by (namespace, value of
the `faiss.dev/index` label), claims by (namespace, name). A pass reads them, decides and sends
only its writes, as controller-runtime's cached client does.

Kopf calls no other handler before every index holds its watch's initial listing, so after a
restart the first pass already sees every child. Staleness is handled as controller-runtime
does: writes are server-side applies and merge patches that need no fresh read, and a stale read
is repaired by the pass that the next watch event triggers. The one read that must see the
operator's own write is the FaissIndex's status (a pass before its watch event would decide from
the old status): `wrote()` keeps the body the API server answered to a write, and `index()`
returns it while the watch still holds exactly the version that write was made from
(client-go's MutationCache does the same).

Bodies are kept without `metadata.managedFields` (large and never read), claims as their
metadata only.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

import kopf

from faiss_operator.api import resource as api_resource
from faiss_operator.controller.decision import manifests

Body = Mapping[str, Any]
# What one Kopf index (or a test's plain dict) looks like when read: key -> the values of the
# objects under that key (Kopf's Store is an iterable of values).
IndexView = Mapping[tuple[str, str], Iterable[Body]]

INDEXES = "faissindexes"
CLAIMS = "persistentvolumeclaims"
# (API group, version, plural) of the children, each watched with the `faiss.dev/index` label.
CHILD_RESOURCES: tuple[tuple[str, str, str], ...] = (
    ("batch", "v1", "jobs"),
    ("", "v1", "pods"),
    ("apps", "v1", "deployments"),
    ("", "v1", "services"),
    ("policy", "v1", "poddisruptionbudgets"),
)
CLAIM_RESOURCE = ("", "v1", CLAIMS)
PREFIX = "cache_"  # Kopf index ids (and handler kwargs) are PREFIX + plural, e.g. cache_jobs


def index_id(plural: str) -> str:
    return f"{PREFIX}{plural}"


def slim(body: Body) -> dict[str, Any]:
    """`body` without metadata.managedFields: the part of an object a pass reads."""
    metadata = {key: value for key, value in (body.get("metadata") or {}).items() if key != "managedFields"}
    return {**body, "metadata": metadata}


def by_name(namespace: str | None, name: str | None, body: Body) -> dict[tuple[str, str], dict[str, Any]]:
    """The index entry of a FaissIndex: (namespace, name) -> its body."""
    return {(namespace, name): slim(body)} if namespace and name else {}


def by_index_label(namespace: str | None, labels: Mapping[str, str], body: Body) -> dict[tuple[str, str], dict[str, Any]]:
    """The index entry of a child: (namespace, its `faiss.dev/index` label) -> its body."""
    value = labels.get(manifests.LABEL_INDEX)
    return {(namespace, value): slim(body)} if namespace and value else {}


def claim_entry(namespace: str | None, name: str | None, body: Body) -> dict[tuple[str, str], dict[str, Any]]:
    """The index entry of a claim: (namespace, name) -> its metadata (existence and deletion)."""
    return {(namespace, name): {"metadata": slim(body)["metadata"]}} if namespace and name else {}


class Caches:
    """The operator's read side. Empty until `attach` hands it the indexes (Kopf's at startup,
    plain dicts in tests); every method is a memory read, safe to call from the event loop."""

    def __init__(self, views: Mapping[str, IndexView] | None = None) -> None:
        self._views: dict[str, IndexView] = dict(views or {})
        self._written: dict[tuple[str, str], tuple[str, Body]] = {}
        self._lock = threading.Lock()

    def attach(self, views: Mapping[str, IndexView]) -> None:
        """Use `views` (plural -> index) from now on."""
        self._views = dict(views)

    def attach_kopf(self, handler_kwargs: Mapping[str, Any]) -> None:
        """Use the Kopf indexes found among a handler's keyword arguments (see `register`)."""
        plurals = (INDEXES, CLAIMS, *(plural for _, _, plural in CHILD_RESOURCES))
        self.attach({plural: handler_kwargs[index_id(plural)] for plural in plurals})

    def _values(self, plural: str, key: tuple[str, str]) -> list[Body]:
        view = self._views.get(plural)
        if view is None:
            raise LookupError(f"the {plural} cache is not attached (the operator has not started)")
        try:
            return list(view[key])
        except KeyError:
            return []

    def index(self, namespace: str, name: str) -> Body | None:
        """The FaissIndex as last seen by the watch, or as the operator's own last write left it."""
        found = self._values(INDEXES, (namespace, name))
        cached = found[0] if found else None
        with self._lock:
            written = self._written.get((namespace, name))
            if written is None:
                return cached
            based_on, body = written
            if cached is not None and _version(cached) == based_on:
                return body
            del self._written[(namespace, name)]  # the watch has caught up (or the object is gone)
        return cached

    def wrote(self, before: Body, after: Body) -> None:
        """The operator wrote the FaissIndex read as `before`; the API server answered `after`."""
        metadata = before.get("metadata") or {}
        key = (str(metadata.get("namespace") or ""), str(metadata.get("name") or ""))
        if _version(after) != _version(before):
            with self._lock:
                self._written[key] = (_version(before), slim(after))

    def children(self, plural: str, namespace: str, index_label: str) -> list[Body]:
        """The `plural` objects labelled `faiss.dev/index=<index_label>` in `namespace`."""
        return self._values(plural, (namespace, index_label))

    def claim(self, namespace: str, name: str) -> Body | None:
        """The claim's metadata, None when it does not exist."""
        found = self._values(CLAIMS, (namespace, name))
        return found[0] if found else None

    def sizes(self) -> dict[str, int]:
        """Objects held per resource (plural), for the operator's metrics."""
        return {plural: sum(_count(values) for values in view.values()) for plural, view in sorted(self._views.items())}


def _count(values: Iterable[Body]) -> int:
    return len(values) if isinstance(values, (list, tuple)) else sum(1 for _ in values)


def _version(body: Body) -> str:
    return str((body.get("metadata") or {}).get("resourceVersion") or "")


def register(registry: kopf.OperatorRegistry) -> None:
    """Register one Kopf index per cached resource on `registry` (the children's watches carry
    the label filter `faiss.dev/index`, see handlers.configure_kopf)."""

    @kopf.index(
        api_resource.GROUP, api_resource.VERSION, api_resource.PLURAL, registry=registry, id=index_id(INDEXES)
    )
    async def index_faissindex(namespace: str | None, name: str | None, body: kopf.Body, **_: Any) -> Any:
        return by_name(namespace, name, body)

    for group, version, plural in CHILD_RESOURCES:

        async def index_child(namespace: str | None, labels: Mapping[str, str], body: kopf.Body, **_: Any) -> Any:
            return by_index_label(namespace, labels, body)

        kopf.index(
            group, version, plural, labels={manifests.LABEL_INDEX: kopf.PRESENT}, registry=registry, id=index_id(plural)
        )(index_child)

    @kopf.index(*CLAIM_RESOURCE, registry=registry, id=index_id(CLAIMS))
    async def index_claim(namespace: str | None, name: str | None, body: kopf.Body, **_: Any) -> Any:
        return claim_entry(namespace, name, body)
