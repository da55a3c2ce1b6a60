"""Which pods are measured, and that one index never has two measurements in flight."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from faiss_operator.controller.decision import actions, analysis, observed
from faiss_operator.controller.runtime import child_views, live_analysis, prober
from tests.controller import builders


def pod(name: str, revision: str, *, ip: str | None = "10.0.0.1", ready: bool = True, deleting: bool = False) -> observed.ObservedPod:
    metadata: dict[str, Any] = {"name": name, "labels": {"faiss.dev/revision": revision, "faiss.dev/component": "serving"}}
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    status: dict[str, Any] = {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    if ip:
        status["podIP"] = ip
    return child_views.pod_view({
        "metadata": metadata,
        "spec": {"containers": [{"name": "server", "ports": [{"name": "http", "containerPort": 8080}]}]},
        "status": status,
    })


PODS = [
    pod("b", "new", ip="10.0.0.2"),
    pod("a", "new", ip="10.0.0.1"),
    pod("c", "new", ip="10.0.0.3", ready=False),
    pod("d", "new", ip=None),
    pod("e", "new", ip="10.0.0.5", deleting=True),
    pod("f", "old", ip="10.0.0.6"),
]


@pytest.mark.parametrize(
    ("revision", "want"),
    [
        ("new", [("new", "http://10.0.0.1:8080"), ("new", "http://10.0.0.2:8080")]),
        ("old", [("old", "http://10.0.0.6:8080")]),
        (None, []),
        ("gone", []),
    ],
)
def test_only_ready_running_pods_with_an_ip_are_measured(revision: str | None, want: list[tuple[str, str]]) -> None:
    assert live_analysis.ready_addresses(PODS, revision) == want


ACTION = actions.Analyze(candidate="new", stable="old", step=1, artifact="pvc://a/b", k=10)


def fake_measure(calls: list[tuple[list[str], list[str]]], gate: asyncio.Event) -> live_analysis.Measure:
    """A double of prober.measure for the wiring only (the prober has its own tests on real pods)."""

    async def measure(
        action: actions.Analyze,
        *,
        candidates: Sequence[prober.PodTarget],
        stables: Sequence[prober.PodTarget],
        clock: Callable[[], datetime.datetime],
        timeout_seconds: float,
    ) -> analysis.Measurement:
        calls.append(([t.address for t in candidates], [t.address for t in stables]))
        await gate.wait()
        return analysis.Measurement(
            revision=action.candidate, step=action.step, taken_at=clock(), candidate=analysis.Probe(samples=10, recall=0.9)
        )

    return measure


def test_one_measurement_in_flight_per_index_then_the_index_is_triggered() -> None:
    calls: list[tuple[list[str], list[str]]] = []
    done: list[tuple[str, str]] = []
    now = [builders.T0]

    async def scenario() -> list[analysis.Measurement]:
        gate = asyncio.Event()
        measure = fake_measure(calls, gate)
        runs = live_analysis.Analyses(
            interval_seconds=10, timeout_seconds=5, clock=lambda: now[0], on_done=done.append, measure=measure
        )
        seen = observed.Children(serving_pods=PODS)
        key = ("search", "alerts")
        assert runs.start(key, ACTION, seen) is True
        assert runs.start(key, ACTION, seen) is False  # one in flight
        assert runs.start(("search", "other"), ACTION, seen) is True  # other indexes are not held up
        gate.set()
        while runs.in_flight(key) or runs.in_flight(("search", "other")):
            await asyncio.sleep(0.001)
        assert runs.start(key, ACTION, seen) is False  # fresh: younger than the interval
        now[0] = builders.T0 + datetime.timedelta(seconds=10)
        assert runs.start(key, ACTION, seen) is True
        measured = runs.measurements(key)
        await runs.stop()
        return measured

    measured = asyncio.run(scenario())
    assert calls[0] == (["http://10.0.0.1:8080", "http://10.0.0.2:8080"], ["http://10.0.0.6:8080"])
    assert sorted(done) == [("search", "alerts"), ("search", "other")]
    assert [(m.revision, m.step, m.taken_at) for m in measured] == [("new", 1, builders.T0)]


def test_nothing_is_started_without_a_ready_candidate_pod() -> None:
    calls: list[tuple[list[str], list[str]]] = []

    async def scenario() -> bool:
        measure = fake_measure(calls, asyncio.Event())
        runs = live_analysis.Analyses(
            interval_seconds=10, timeout_seconds=5, clock=lambda: builders.T0, on_done=lambda k: None, measure=measure
        )
        only_stable = observed.Children(serving_pods=[pod("f", "old"), pod("c", "new", ready=False)])
        return runs.start(("search", "alerts"), ACTION, only_stable)

    assert asyncio.run(scenario()) is False
    assert calls == []


