"""One serialized, level-triggered reconcile loop per FaissIndex.

A trigger (a watch event of the FaissIndex or of one of its labelled children, a finished
measurement) wakes the FaissIndex's worker task; the worker reads the watch-fed caches, calls
`decide()`, applies the plan and sleeps until the next trigger or the plan's `requeue_after`
(at most `resync_seconds`). Triggers that arrive during a reconcile fold into one more pass, so
one FaissIndex never has two reconciles at once while different indexes run concurrently. A
reconcile that raises is logged and retried with exponential backoff; it never stops the
worker, and a spec the operator cannot act on is not an error at all (decide turns it into
conditions). A plan that breaks the transition tables (a controller bug, `state.IllegalTransition`)
is refused whole: nothing written, what serves keeps serving, one Warning Event, a look again at
the resync rather than a retry loop. The worker ends when the FaissIndex is gone.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import time
from collections.abc import Callable

from faiss_operator.controller.decision import actions as plan_actions
from faiss_operator.controller.decision import decide as deciding
from faiss_operator.controller.decision import manifests, state
from faiss_operator.controller.decision import settings as operator_settings
from faiss_operator.controller.runtime import applier as applying
from faiss_operator.controller.runtime import kube_api, live_analysis
from faiss_operator.controller.runtime import metrics as operator_metrics
from faiss_operator.controller.runtime import observe as observing
from faiss_operator.controller.runtime import source_objects as sourcing

LOGGER = logging.getLogger("faiss_operator.controller")
ILLEGAL_TRANSITION = "IllegalTransition"  # the reason of the Event of a plan refused as a controller bug
Key = live_analysis.Key


@dataclasses.dataclass(frozen=True)
class Timing:
    """How often a worker looks again: after an idle `resync_seconds` (default 300 s, drift repair),
    never sooner than `min_requeue_seconds` after a pass (0.5 s), and after a failed pass with
    backoff doubling from `error_backoff_seconds` (1 s) to `max_error_backoff_seconds` (60 s)."""

    resync_seconds: float = 300.0
    min_requeue_seconds: float = 0.5
    error_backoff_seconds: float = 1.0
    max_error_backoff_seconds: float = 60.0

    def backoff(self, failures: int) -> float:
        return float(min(self.max_error_backoff_seconds, self.error_backoff_seconds * 2.0 ** max(0, failures - 1)))


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


class Reconciler:
    """The workers of every FaissIndex the operator has seen; `trigger` is called from Kopf's
    event handlers and from finished measurements, on the event loop."""

    def __init__(
        self,
        *,
        reader: observing.Reader,
        applier: applying.Applier,
        settings: operator_settings.OperatorSettings,
        metrics: operator_metrics.OperatorMetrics,
        timing: Timing = Timing(),
        analysis_timeout_seconds: float = 30.0,
        clock: Callable[[], datetime.datetime] = utc_now,
        sources: sourcing.SourceObjects | None = None,
    ) -> None:
        self.reader = reader
        self.applier = applier
        self.settings = settings
        self.metrics = metrics
        self.timing = timing
        self.clock = clock
        # What the store says of s3:// sources (None: not asked, revisions hash the URI alone).
        self.sources = sources
        self.analyses = live_analysis.Analyses(
            interval_seconds=settings.analysis_interval_seconds,
            timeout_seconds=analysis_timeout_seconds,
            clock=clock,
            on_done=self.trigger,
        )
        self._workers: dict[Key, asyncio.Task[None]] = {}
        self._wakes: dict[Key, asyncio.Event] = {}
        # label value of faiss.dev/index -> FaissIndex name, per namespace (long names are hashed)
        self._by_label: dict[tuple[str, str], str] = {}
        # The last illegal transition said in an Event, per FaissIndex: said once, not every pass.
        self._bugs: dict[Key, str] = {}

    # --- triggers -----------------------------------------------------------------------------
    def trigger(self, key: Key) -> None:
        """Reconcile the FaissIndex `key` soon: wake its worker, starting one if needed."""
        wake = self._wakes.get(key)
        if wake is None:
            wake = self._wakes[key] = asyncio.Event()
        wake.set()
        if key not in self._workers:
            self._workers[key] = asyncio.create_task(self._work(key, wake), name=f"reconcile {key[0]}/{key[1]}")

    def index_seen(self, namespace: str, name: str) -> None:
        self._by_label[(namespace, manifests.label_value(name))] = name
        self.trigger((namespace, name))

    def child_changed(self, namespace: str, index_label: str) -> None:
        """A child labelled `faiss.dev/index=<index_label>` changed; reconcile its FaissIndex."""
        name = self._by_label.get((namespace, index_label), index_label)
        self.trigger((namespace, name))

    def namespace_changed(self, namespace: str) -> None:
        """Something every FaissIndex of `namespace` may depend on changed (a claim)."""
        for key in [k for k in self._workers if k[0] == namespace]:
            self.trigger(key)

    def workers(self) -> list[Key]:
        return sorted(self._workers)

    async def stop(self) -> None:
        tasks = list(self._workers.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.analyses.stop()
        self._workers.clear()
        self._wakes.clear()

    # --- the loop -----------------------------------------------------------------------------
    async def _work(self, key: Key, wake: asyncio.Event) -> None:
        failures = 0
        delay = self.timing.resync_seconds
        while True:
            try:
                await asyncio.wait_for(wake.wait(), timeout=delay)
            except TimeoutError:
                pass
            wake.clear()
            started = time.perf_counter()
            try:
                requeue = await self.reconcile(key)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # logged with backoff; the worker goes on
                failures += 1
                delay = self.timing.backoff(failures)
                self.metrics.reconcile_errors.inc()
                LOGGER.error(
                    "Failed to reconcile FaissIndex %s/%s (%s); retrying in %.1f s (failure %d)",
                    *key, kube_api.describe(error)[:2000], delay, failures,
                    # an API or network error says all in one line; anything else is a bug: show where
                    exc_info=not kube_api.is_api_error(error) or LOGGER.isEnabledFor(logging.DEBUG),
                )  # fmt: skip
                continue
            finally:
                self.metrics.reconcile_seconds.observe(time.perf_counter() - started)
            failures = 0
            if requeue is None:  # the FaissIndex is gone
                if wake.is_set():
                    delay = 0
                    continue
                self._forget(key)
                return
            delay = requeue

    def _refuse_bug(self, key: Key, seen: observing.Observation, bug: state.IllegalTransition) -> float:
        """A plan that would make a move the transition tables do not list is a controller bug:
        nothing of it is applied (status and children stay as they are, what serves keeps
        serving), it is logged with its traceback and said once in a Warning Event, and the pass
        is tried again at the resync (a fixed operator, or a changed object, may get past it)."""
        namespace, name = key
        self.metrics.reconcile_errors.inc()
        LOGGER.error(
            "Refused the plan of FaissIndex %s/%s: %s; status and children left as they are", namespace, name, bug,
            exc_info=True,
        )  # fmt: skip
        if self._bugs.get(key) != str(bug):
            self._bugs[key] = str(bug)
            message = f"{bug}; nothing was changed (a bug in the operator: please report it)"
            self.applier.post_event(seen.body, plan_actions.Event("Warning", ILLEGAL_TRANSITION, message))
        return self.timing.resync_seconds

    def _forget(self, key: Key) -> None:
        self._workers.pop(key, None)
        self._wakes.pop(key, None)
        self._by_label = {k: v for k, v in self._by_label.items() if (k[0], v) != key}
        self._bugs.pop(key, None)
        self.analyses.forget(key)
        self.metrics.forget(*key)
        if self.sources is not None:
            self.sources.forget(key)

    async def reconcile(self, key: Key) -> float | None:
        """One pass: observe, decide, apply. Returns seconds until the next pass, None when the
        FaissIndex is gone; raises what the API calls raise after their retries."""
        namespace, name = key
        seen = observing.observe(self.reader, namespace, name)
        if seen is None:
            return None
        children = seen.children
        if self.sources is not None:
            looked_at, looks = seen.resource.generation, self.sources.looks
            found = await self.sources.observe(seen.resource)
            if self.sources.looks != looks:
                # The look waited on the store (up to its deadline): decide on the caches as they
                # are now, with the source objects of the same spec.
                seen = observing.observe(self.reader, namespace, name)
                if seen is None:
                    return None
                if seen.resource.generation != looked_at:
                    return self.timing.min_requeue_seconds
            children = dataclasses.replace(seen.children, source_objects=found)
        try:
            plan = deciding.decide(
                seen.resource, children, self.analyses.measurements(key), self.clock(), settings=self.settings
            )
        except state.IllegalTransition as bug:
            return self._refuse_bug(key, seen, bug)
        self._bugs.pop(key, None)
        try:
            await self.applier.apply(seen, plan, lambda action: self.analyses.start(key, action, seen.children))
        except applying.IndexGone:
            LOGGER.info("FaissIndex %s/%s is gone (its cached copy was stale)", namespace, name)
            return None
        self.metrics.record(namespace, name, seen.resource.status, plan.status, seen.children)
        requeue = self.timing.resync_seconds if plan.requeue_after is None else plan.requeue_after
        if self.sources is not None:  # look at the source objects again when their answer is due
            due = self.sources.requeue_after(key)
            requeue = requeue if due is None else min(requeue, due)
        return min(self.timing.resync_seconds, max(self.timing.min_requeue_seconds, requeue))
