"""Live analysis for the Kopf layer: run the prober in the background, keep the newest result.

At an `Analyze` action the reconcile starts one measurement per FaissIndex (never two at once)
against the ready serving pods of the candidate and of the stable revision, by pod IP, and goes
on; when the measurement ends the FaissIndex is reconciled again and the measurement goes into
`decide()`. The measuring itself is `controller.prober.measure` (an I/O edge).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol

from faiss_operator.controller.decision import actions as plan_actions
from faiss_operator.controller.decision import analysis, observed
from faiss_operator.controller.runtime import prober

LOGGER = logging.getLogger("faiss_operator.controller")

Key = tuple[str, str]  # (namespace, name) of a FaissIndex


class Measure(Protocol):
    """The signature of `prober.measure` that the Kopf layer uses."""

    def __call__(
        self,
        action: plan_actions.Analyze,
        *,
        candidates: Sequence[prober.PodTarget],
        stables: Sequence[prober.PodTarget],
        clock: Callable[[], datetime.datetime],
        timeout_seconds: float,
    ) -> Awaitable[analysis.Measurement]: ...


def ready_addresses(pods: Sequence[observed.ObservedPod], revision: str | None) -> list[tuple[str, str]]:
    """[(revision, "http://<podIP>:<port>")] of the Ready, not terminating serving pods of `revision`,
    in name order; the port is the serving container's port named `http`."""
    if revision is None:
        return []
    return [
        (revision, pod.address)
        for pod in sorted(pods, key=lambda p: p.name)
        if pod.revision == revision and pod.ready and not pod.terminating and pod.address is not None
    ]


class Analyses:
    """The newest measurement and the one in flight, per FaissIndex."""

    def __init__(
        self,
        *,
        interval_seconds: float,
        timeout_seconds: float,
        clock: Callable[[], datetime.datetime],
        on_done: Callable[[Key], None],
        measure: Measure = prober.measure,
    ) -> None:
        self._interval = interval_seconds
        self._timeout = timeout_seconds
        self._clock = clock
        self._on_done = on_done
        self._measure_pods = measure
        self._latest: dict[Key, analysis.Measurement] = {}
        self._running: dict[Key, asyncio.Task[None]] = {}

    def measurements(self, key: Key) -> list[analysis.Measurement]:
        latest = self._latest.get(key)
        return [latest] if latest is not None else []

    def in_flight(self, key: Key) -> bool:
        return key in self._running

    def start(self, key: Key, action: plan_actions.Analyze, children: observed.Children) -> bool:
        """Start measuring unless one runs for `key`, no candidate pod is ready, or a measurement
        of the same candidate and step is younger than the analysis interval; True when started."""
        if key in self._running:
            return False
        latest = self._latest.get(key)
        if (
            latest is not None
            and (latest.revision, latest.step) == (action.candidate, action.step)
            and (self._clock() - latest.taken_at).total_seconds() < self._interval
        ):
            return False
        ready_candidates = ready_addresses(children.serving_pods, action.candidate)
        if not ready_candidates:
            return False  # nothing to measure yet; the next pass asks again
        candidates = [prober.PodTarget(revision=r, address=a) for r, a in ready_candidates]
        stables = [prober.PodTarget(revision=r, address=a) for r, a in ready_addresses(children.serving_pods, action.stable)]
        task = asyncio.create_task(self._measure(key, action, candidates, stables), name=f"analysis {key[0]}/{key[1]}")
        self._running[key] = task
        return True

    async def _measure(
        self,
        key: Key,
        action: plan_actions.Analyze,
        candidates: Sequence[prober.PodTarget],
        stables: Sequence[prober.PodTarget],
    ) -> None:
        try:
            measurement = await self._measure_pods(
                action, candidates=candidates, stables=stables, clock=self._clock, timeout_seconds=self._timeout
            )
            self._latest[key] = measurement  # the prober logs what it measured
        except asyncio.CancelledError:
            raise
        except Exception:  # the prober promises not to raise; a bug must not stop the operator
            LOGGER.exception("Analysis of revision=%s failed index=%s/%s", action.candidate, *key)
        finally:
            self._running.pop(key, None)
        self._on_done(key)

    def forget(self, key: Key) -> None:
        self._latest.pop(key, None)
        task = self._running.pop(key, None)
        if task is not None:
            task.cancel()

    async def stop(self) -> None:
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._running.clear()

    def snapshot(self) -> Mapping[Key, analysis.Measurement]:
        return dict(self._latest)
