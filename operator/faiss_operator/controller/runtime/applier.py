"""Carry out one `Plan` against the API server, in the write order of actions.py.

1. the status (one merge patch of the status subresource), only when `status_changed`: first,
   so a new FaissIndex shows its status one request sooner (what a user waits for)
2. AddFinalizer actions (one metadata patch over the resourceVersion the status write answered
   or the cache holds: no read), before any child exists that the finalizer must clean up
3. Apply / Delete / Analyze in plan order (Apply = server-side apply, field manager
   `faiss-operator`, forced; Analyze starts a measurement in the background)
4. RemoveAnnotation actions (one metadata merge patch)
5. RemoveFinalizer actions (one metadata patch)
6. the Events, only after every write above succeeded

Every answer of a write goes to `writes` (caches.Caches layers them over its watches until the
watches catch up, so the next pass reads the operator's own writes).

"Not found" on Delete, on the annotation patch and on a finalizer removal counts as success
(the object is already where the plan wants it). A namespace being deleted accepts no new object
(403, NamespaceTerminating): an Apply creating one there is skipped and said in a Warning Event
(`NamespaceTerminating`, on the Namespace, whose Events are kept in the operator's own
namespace; the plan's Events on the FaissIndex are dropped, the namespace would refuse them),
and the rest of the plan goes on, so the finalizer of a FaissIndex in
a namespace being deleted is released instead of blocking the namespace for good (nolar/kopf#1088).
(Once the namespace watch shows it Terminating, decide() plans no create at all and the plan's
Events go on the Namespace; the 403 path covers a create made before the watch showed it.) A
404 on the FaissIndex's own status patch, or its absence when adding the finalizer, raises
`IndexGone`: the cached copy outlived it. Conflicts, throttling, server and connection
errors are retried with exponential backoff (tenacity); any other API error raises, the writes
after it are not made, and the reconcile is tried again later with the same level-triggered
plan. Each write is logged once, capitalised past tense: `Created Job glosses-build-5d41c2
revision=5d41c2 index=search/glosses`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar, cast

import tenacity

from faiss_operator.controller.decision import actions as plan_actions
from faiss_operator.controller.decision import manifests
from faiss_operator.controller.decision import observed
from faiss_operator.controller.runtime import kube_api
from faiss_operator.controller.runtime import observe as observing

LOGGER = logging.getLogger("faiss_operator.controller")
NAMESPACE_TERMINATING = "NamespaceTerminating"  # the reason of the Event saying what was not created
T = TypeVar("T")


class IndexGone(Exception):
    """The FaissIndex a plan was made for is gone from the API server (404 on its own write),
    while the cache still showed it: a watch that has not delivered, or will never deliver, its
    deletion (a stream stopped with its namespace)."""

    def __init__(self, namespace: str, name: str) -> None:
        super().__init__(f"FaissIndex {namespace}/{name} is gone")


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a retryable API error is tried again (defaults: 6 tries, 0.2 s
    doubling to at most 5 s with jitter, about 15 s in all)."""

    attempts: int = 6
    initial_seconds: float = 0.2
    max_seconds: float = 5.0


async def call(policy: RetryPolicy, function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` in a worker thread, retried while `kube_api.retryable` says so."""
    retrying = tenacity.AsyncRetrying(
        retry=tenacity.retry_if_exception(kube_api.retryable),
        wait=tenacity.wait_exponential_jitter(multiplier=policy.initial_seconds, max=policy.max_seconds, jitter=policy.initial_seconds),
        stop=tenacity.stop_after_attempt(policy.attempts),
        reraise=True,
    )
    return cast(T, await retrying(asyncio.to_thread, function, *args))


EventSink = Callable[[Mapping[str, Any], plan_actions.Event], None]
AnalysisStarter = Callable[[plan_actions.Analyze], bool]  # True when a measurement was started


class WriteLog(Protocol):
    """Told of each write that succeeded (caches.Caches)."""

    def applied(self, answer: Mapping[str, Any]) -> None: ...

    def deleted(self, kind: str, namespace: str, index_key: str, name: str) -> None: ...


class NoWriteLog:
    def applied(self, answer: Mapping[str, Any]) -> None:
        return None

    def deleted(self, kind: str, namespace: str, index_key: str, name: str) -> None:
        return None


@dataclasses.dataclass
class _Writing:
    """One plan being written: the FaissIndex as last written (the cache's copy, then each
    write's answer), the lines logged, the children a terminating namespace refused."""

    namespace: str
    name: str
    body: Mapping[str, Any]
    done: list[str] = dataclasses.field(default_factory=list)
    skipped: list[plan_actions.Apply] = dataclasses.field(default_factory=list)

    def record(self, line: str) -> None:
        LOGGER.info("%s index=%s/%s", line, self.namespace, self.name)
        self.done.append(line)

    def applied(self, writes: WriteLog, answer: Mapping[str, Any]) -> None:
        """The FaissIndex as a write answered: what the rest of the plan writes over."""
        self.body = answer
        writes.applied(answer)


@dataclasses.dataclass
class Applier:
    """Applies plans for any FaissIndex; `post_event` must not block."""

    api: kube_api.KubeApi
    post_event: EventSink
    retry: RetryPolicy = dataclasses.field(default_factory=RetryPolicy)
    writes: WriteLog = dataclasses.field(default_factory=NoWriteLog)

    async def apply(
        self, seen: observing.Observation, plan: plan_actions.Plan, start_analysis: AnalysisStarter
    ) -> list[str]:
        """Make the writes of `plan` for the FaissIndex in `seen`; returns the lines logged, in order.

        The order: the status (the user sees it first), the finalizer (before any child it cleans
        up), the children, the admin annotations acted on, a finalizer released, then the Events.
        `start_analysis` is called for each Analyze action and must not block (it starts a task).
        """
        written = _Writing(seen.resource.namespace, seen.resource.name, seen.body)
        if plan.status_changed and plan.status_patch:
            await self._write_status(written, plan)
        added = [a.name for a in plan.actions if isinstance(a, plan_actions.AddFinalizer)]
        if added:
            await self._add_finalizers(written, added)
        for action in plan.actions:
            if isinstance(action, plan_actions.Apply):
                await self._apply_child(written, seen.children, action)
            elif isinstance(action, plan_actions.Delete):
                await self._delete_child(written, seen.children, action)
            elif isinstance(action, plan_actions.Analyze) and start_analysis(action):
                written.record(f"Started analysis of revision={action.candidate} step={action.step} "
                               f"stable={action.stable or '-'}")  # fmt: skip
        removed = [a.key for a in plan.actions if isinstance(a, plan_actions.RemoveAnnotation)]
        if removed:
            await self._remove_annotations(written, removed)
        released = [a.name for a in plan.actions if isinstance(a, plan_actions.RemoveFinalizer)]
        if released:
            await self._release_finalizers(written, released)
        self._post_events(written, plan.events, namespace_terminating=seen.children.namespace_terminating)
        return written.done

    async def _write_status(self, written: _Writing, plan: plan_actions.Plan) -> None:
        try:
            answer = await call(self.retry, self.api.patch_status, written.namespace, written.name, plan.status_patch)
        except Exception as error:
            if kube_api.is_not_found(error):
                raise IndexGone(written.namespace, written.name) from error
            raise
        written.applied(self.writes, answer)
        written.record(f"Updated status of FaissIndex {written.name} phase={plan.status.phase}")

    async def _add_finalizers(self, written: _Writing, names: Sequence[str]) -> None:
        answer = await self._finalizers(written.body, add=names, remove=())
        if answer is None:
            raise IndexGone(written.namespace, written.name)
        written.applied(self.writes, answer)
        written.record(f"Added finalizer {', '.join(names)} to FaissIndex {written.name}")

    async def _release_finalizers(self, written: _Writing, names: Sequence[str]) -> None:
        answer = await self._finalizers(written.body, add=(), remove=names)
        # The next pass reads the release, not the watch's older version (a FaissIndex marked
        # deleted is gone with it: nothing to read).
        if answer is not None and not (answer.get("metadata") or {}).get("deletionTimestamp"):
            self.writes.applied(answer)
        written.record(f"Removed finalizer {', '.join(names)} from FaissIndex {written.name}")

    async def _apply_child(self, written: _Writing, children: observed.Children, action: plan_actions.Apply) -> None:
        existed = _observed(children, action.kind, action.name) is not None
        try:
            self.writes.applied(await call(self.retry, self.api.apply, action.manifest))
        except Exception as error:
            if existed or not kube_api.is_namespace_terminating(error):
                raise
            written.skipped.append(action)
            written.record(f"Skipped {action.kind} {action.name}: namespace {written.namespace} is being deleted")
            return
        revision = ((action.manifest["metadata"].get("labels") or {}).get(manifests.LABEL_REVISION)) or "-"
        written.record(f"{'Updated' if existed else 'Created'} {action.kind} {action.name} revision={revision}")

    async def _delete_child(self, written: _Writing, children: observed.Children, action: plan_actions.Delete) -> None:
        child = _observed(children, action.kind, action.name)
        revision = (child.revision if child is not None else None) or "-"
        gone = await self._delete(written.namespace, action)
        self.writes.deleted(action.kind, written.namespace, manifests.label_value(written.name), action.name)
        written.record(f"Deleted {action.kind} {action.name} revision={revision}" + (" (already gone)" if gone else ""))

    async def _remove_annotations(self, written: _Writing, keys: Sequence[str]) -> None:
        patch = {"metadata": {"annotations": {key: None for key in keys}}}
        try:
            answer = await call(self.retry, self.api.patch_index, written.namespace, written.name, patch)
            written.applied(self.writes, answer)
        except Exception as error:
            if not kube_api.is_not_found(error):
                raise
        written.record(f"Removed annotation {', '.join(keys)} from FaissIndex {written.name}")

    def _post_events(
        self, written: _Writing, events: Sequence[plan_actions.Event], *, namespace_terminating: bool
    ) -> None:
        if namespace_terminating:  # the namespace refuses Events on the FaissIndex
            for event in events:
                self.post_event(_namespace(written.namespace), event)
        elif not written.skipped:
            for event in events:
                self.post_event(written.body, event)
        # A namespace being deleted refuses new Events too, and Kopf retries each refused Event for
        # about a minute before the next one in its queue (every index's): the FaissIndex's Events
        # are dropped, and the Namespace itself is told (its Events go to the operator's namespace).
        for action in written.skipped:
            self.post_event(_namespace(written.namespace), _not_created(written.namespace, action))

    async def _delete(self, namespace: str, action: plan_actions.Delete) -> bool:
        """True when the object was already gone."""
        try:
            await call(self.retry, self.api.delete, action.api_version, action.kind, namespace, action.name)
        except Exception as error:
            if kube_api.is_not_found(error):
                return True
            raise
        return False

    async def _finalizers(
        self, known: Mapping[str, Any], *, add: Sequence[str], remove: Sequence[str]
    ) -> Mapping[str, Any] | None:
        """Change and write the finalizer list of the FaissIndex `known` (as the pass last saw
        it: the cache, or the answer of an earlier write of the plan), guarded by its
        resourceVersion, as controller-runtime writes from its cache; a conflict (the cached copy
        was stale) is retried from a fresh read. None when the FaissIndex is gone."""
        metadata = known.get("metadata") or {}
        namespace, name = str(metadata.get("namespace") or ""), str(metadata.get("name") or "")
        fresh = False  # the first try writes over `known`, every retry over a GET

        def change() -> Mapping[str, Any] | None:
            nonlocal fresh
            body = self.api.get_index(namespace, name) if fresh else known
            fresh = True
            if body is None:
                return None
            metadata = body.get("metadata") or {}
            current = list(metadata.get("finalizers") or ())
            wanted = [f for f in current if f not in remove] + [f for f in add if f not in current]
            if wanted == current:
                return body
            patch = {"metadata": {"finalizers": wanted, "resourceVersion": metadata.get("resourceVersion")}}
            try:
                return self.api.patch_index(namespace, name, patch)
            except Exception as error:
                if kube_api.is_not_found(error):
                    return None
                raise

        return await call(self.retry, change)


def _namespace(name: str) -> dict[str, Any]:
    """A Namespace as the subject of an Event (its Events are kept in the operator's namespace)."""
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def _not_created(namespace: str, action: plan_actions.Apply) -> plan_actions.Event:
    component = ((action.manifest["metadata"].get("labels") or {}).get(manifests.LABEL_COMPONENT)) or ""
    consequence = (
        "the artifact files it would remove stay on their claim (they go with the claim if it is deleted too)"
        if component == manifests.COMPONENT_CLEANUP
        else "nothing else waits for it"
    )
    return plan_actions.Event(
        "Warning",
        NAMESPACE_TERMINATING,
        f"namespace {namespace} is being deleted and accepts no new objects: {action.kind} {action.name} "
        f"was not created; {consequence}",
    )


def _observed(children: observed.Children, kind: str, name: str) -> observed.ObservedObject | None:
    groups: dict[str, Sequence[observed.ObservedObject]] = {
        "Job": children.jobs,
        "Deployment": children.deployments,
        "Service": children.services,
        "PodDisruptionBudget": children.disruption_budgets,
    }
    return next((child for child in groups.get(kind, ()) if child.name == name), None)
