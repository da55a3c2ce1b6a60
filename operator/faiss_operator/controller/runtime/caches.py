"""Watch-fed in-memory caches: what a reconcile pass reads instead of asking the API server.

A pass used to GET its FaissIndex and LIST six kinds of children, so the API load grew with
(indexes x passes). Now Kopf's watches fill one Kopf index (`kopf.index`) per kind, keyed by
FaissIndex: the FaissIndex objects by (namespace, name), their children by (namespace, value of
the `faiss.dev/index` label), claims by (namespace, name), namespaces by (name, ""). A pass reads them, decides and sends
only its writes, as controller-runtime's cached client does.

Kopf calls no other handler before every index holds its watch's initial listing, so after a
restart the first pass already sees every child. Staleness is handled as controller-runtime
does: writes are server-side applies and merge patches that need no fresh read, and a stale read
is repaired by the pass that the next watch event triggers. But each kind has its own watch, so
a pass woken by the event of the operator's status write can run before the watch of the Job it
created in the same pass has delivered it, and would create it again. So the operator's own
writes are layered over the watches (client-go's MutationCache): `applied()` keeps the object as
the API server answered a write, `deleted()` marks one gone, and reads show that version while
the watch still holds the version the write was made over or one older than the write's (a
pass's status patch, delivered before its finalizer patch); once the watch shows the write's
version or a newer one, or the object gone, or after `WRITE_TTL_SECONDS` (an object created and
gone again before any pass read it), the entry is dropped.

Bodies are kept without `metadata.managedFields` (large and never read), claims as their
metadata only.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Callable, Iterable, Mapping
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
NAMESPACES = "namespaces"
NAMESPACE_RESOURCE = ("", "v1", NAMESPACES)
# kind -> plural, of the objects the operator writes
PLURALS = {"FaissIndex": INDEXES, "Job": "jobs", "Pod": "pods", "Deployment": "deployments", "Service": "services",
           "PodDisruptionBudget": "poddisruptionbudgets"}  # fmt: skip
WRITE_TTL_SECONDS = 60.0  # watch events come in milliseconds; this only bounds a lost one
SIZES_TIMEOUT_SECONDS = 10.0
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


def namespace_entry(name: str | None, body: Body) -> dict[tuple[str, str], dict[str, Any]]:
    """The index entry of a namespace: (name, "") -> its metadata (deletion) and phase."""
    phase = (body.get("status") or {}).get("phase")
    return {(name, ""): {"metadata": slim(body)["metadata"], "status": {"phase": phase}}} if name else {}


@dataclasses.dataclass(frozen=True)
class _Written:
    over: str | None  # resourceVersion in the cache when the write returned; None: not there
    body: Body | None  # as the API server answered; None: deleted
    until: float  # time.monotonic() after which the watch is the truth whatever it shows


class Caches:
    """The operator's read side. Empty until `attach` hands it the indexes (Kopf's at startup,
    plain dicts in tests); every method is a memory read, safe to call from the event loop."""

    def __init__(self, views: Mapping[str, IndexView] | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._views: dict[str, IndexView] = dict(views or {})
        # (plural, namespace, index key) -> {name: the operator's own write}
        self._written: dict[tuple[str, str, str], dict[str, _Written]] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None  # where Kopf changes its indexes

    def attach(self, views: Mapping[str, IndexView]) -> None:
        """Use `views` (plural -> index) from now on."""
        self._views = dict(views)

    def attach_kopf(self, handler_kwargs: Mapping[str, Any]) -> None:
        """Use the Kopf indexes found among a handler's keyword arguments (see `register`)."""
        plurals = (INDEXES, CLAIMS, NAMESPACES, *(plural for _, _, plural in CHILD_RESOURCES))
        self.attach({plural: handler_kwargs[index_id(plural)] for plural in plurals})
        self._loop = asyncio.get_running_loop()

    def _watched(self, plural: str, key: tuple[str, str]) -> list[Body]:
        view = self._views.get(plural)
        if view is None:
            raise LookupError(f"the {plural} cache is not attached (the operator has not started)")
        try:
            return list(view[key])
        except KeyError:
            return []

    def _values(self, plural: str, key: tuple[str, str]) -> list[Body]:
        found = {_name(body): body for body in self._watched(plural, key)}
        now = self._clock()
        with self._lock:
            written = self._written.get((plural, *key))
            for name, write in list((written or {}).items()):
                assert written is not None
                if now > write.until or _caught_up(_version(found.get(name)), write):
                    del written[name]  # the watch has moved on: it is the truth again
                elif write.body is None:
                    found.pop(name, None)
                else:
                    found[name] = write.body
            if written == {}:
                del self._written[(plural, *key)]
        return list(found.values())

    def applied(self, answer: Body) -> None:
        """The API server answered a write (apply, patch) of the operator with `answer`."""
        plural = PLURALS.get(str(answer.get("kind")))
        metadata = answer.get("metadata") or {}
        namespace, name = str(metadata.get("namespace") or ""), str(metadata.get("name") or "")
        key = name if plural == INDEXES else (metadata.get("labels") or {}).get(manifests.LABEL_INDEX)
        if plural is not None and key:
            self._remember(plural, (namespace, str(key)), name, slim(answer))

    def deleted(self, kind: str, namespace: str, index_key: str, name: str) -> None:
        """The operator deleted `kind` `name` (a child: `index_key` is its `faiss.dev/index` label)."""
        plural = PLURALS.get(kind)
        if plural is not None:
            self._remember(plural, (namespace, index_key), name, None)

    def _remember(self, plural: str, key: tuple[str, str], name: str, body: Body | None) -> None:
        watched = next((b for b in self._watched(plural, key) if _name(b) == name), None)
        with self._lock:
            self._written.setdefault((plural, *key), {})[name] = _Written(
                over=_version(watched), body=body, until=self._clock() + WRITE_TTL_SECONDS
            )

    def index(self, namespace: str, name: str) -> Body | None:
        """The FaissIndex as the watch last saw it, or as the operator's own last write left it."""
        found = self._values(INDEXES, (namespace, name))
        return found[0] if found else None

    def children(self, plural: str, namespace: str, index_label: str) -> list[Body]:
        """The `plural` objects labelled `faiss.dev/index=<index_label>` in `namespace`."""
        return self._values(plural, (namespace, index_label))

    def claim(self, namespace: str, name: str) -> Body | None:
        """The claim's metadata, None when it does not exist."""
        found = self._watched(CLAIMS, (namespace, name))
        return found[0] if found else None

    def namespace_terminating(self, namespace: str) -> bool:
        """Whether `namespace` is being deleted (deletionTimestamp set, phase Terminating); False
        when unseen or when no namespace watch is attached (tests that need none)."""
        if NAMESPACES not in self._views:
            return False
        found = self._watched(NAMESPACES, (namespace, ""))
        return any(
            (body.get("metadata") or {}).get("deletionTimestamp") or (body.get("status") or {}).get("phase") == "Terminating"
            for body in found
        )

    def sizes(self) -> dict[str, int]:
        """Objects held per resource (plural), for the operator's metrics. Kopf changes its
        indexes on the event loop; iterated from another thread (the metrics server's) while a
        burst of events arrives, a dict changes size under the iteration, so the count is made on
        the loop (at most `SIZES_TIMEOUT_SECONDS` waiting for it)."""
        loop = self._loop
        if loop is None or not loop.is_running() or _running_loop() is loop:
            return self._sizes()

        async def on_loop() -> dict[str, int]:
            return self._sizes()

        return asyncio.run_coroutine_threadsafe(on_loop(), loop).result(timeout=SIZES_TIMEOUT_SECONDS)

    def _sizes(self) -> dict[str, int]:
        return {plural: sum(_count(values) for values in view.values()) for plural, view in sorted(self._views.items())}


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _count(values: Iterable[Body]) -> int:
    return len(values) if isinstance(values, (list, tuple)) else sum(1 for _ in values)


def _caught_up(watched: str | None, write: _Written) -> bool:
    """Whether the watch, now holding version `watched` (None: no such object), shows the
    operator's write or something newer. A watch still holding the version the write was made
    over has not; nor has one holding a version between the two: the event of an earlier write
    of the same pass (the status, then the finalizer: the watch delivers the status write's
    version while the finalizer write's answer is the newer truth). resourceVersions are compared
    as integers, as client-go's NewIntegerResourceVersionMutationCache does (etcd's revisions); a
    version that is not one counts as newer."""
    if watched == write.over:
        return False
    if watched is None or write.body is None:
        return True  # gone since (whoever deleted it), or a deletion the watch shows moved on
    try:
        return int(watched) >= int(_version(write.body) or "")
    except ValueError:
        return True


def _version(body: Body | None) -> str | None:
    return None if body is None else str((body.get("metadata") or {}).get("resourceVersion") or "")


def _name(body: Body) -> str:
    return str((body.get("metadata") or {}).get("name") or "")


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

    @kopf.index(*NAMESPACE_RESOURCE, registry=registry, id=index_id(NAMESPACES))
    async def index_namespace(name: str | None, body: kopf.Body, **_: Any) -> Any:
        return namespace_entry(name, body)
