"""The per-index loop: a trigger reconciles with the real decide(); failures back off, never stop it."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import prometheus_client
import pytest

from faiss_operator.api import resource as api_resource
from faiss_operator.controller.decision import manifests, state
from faiss_operator.controller.runtime import applier, kube_api, reconciler
from faiss_operator.controller.runtime import metrics as operator_metrics
from tests.controller import builders
from tests.controller.recording_api import RecordingApi, StateReader, api_error

FAST = reconciler.Timing(resync_seconds=5, min_requeue_seconds=0.01, error_backoff_seconds=0.01, max_error_backoff_seconds=0.02)


def body() -> dict[str, Any]:
    return {
        "apiVersion": api_resource.API_VERSION,
        "kind": api_resource.KIND,
        "metadata": {"name": "alerts", "namespace": "search", "uid": "u1", "resourceVersion": "1", "generation": 1},
        "spec": builders.spec(),
    }


def make(api: RecordingApi) -> tuple[reconciler.Reconciler, list[str]]:
    events: list[str] = []
    loop = reconciler.Reconciler(
        reader=StateReader(api),
        applier=applier.Applier(
            api=cast(kube_api.KubeApi, api),
            post_event=lambda b, e: events.append(e.reason),
            retry=applier.RetryPolicy(attempts=2, initial_seconds=0.001, max_seconds=0.001),
        ),
        settings=builders.SETTINGS,
        metrics=operator_metrics.OperatorMetrics(prometheus_client.CollectorRegistry()),
        timing=FAST,
        clock=lambda: builders.T0,
    )
    return loop, events


async def until(condition: Any, seconds: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


def test_a_first_trigger_writes_status_adds_the_finalizer_and_creates_the_build_job() -> None:
    api = RecordingApi(index=body(), claims={"embeddings", "faiss-artifacts"})

    async def scenario() -> None:
        loop, _ = make(api)
        loop.index_seen("search", "alerts")
        await until(lambda: any(c[0] == "apply" for c in api.calls))
        await loop.stop()

    asyncio.run(scenario())
    kinds = [c[0] if c[0] != "apply" else f"apply {c[1]}" for c in api.calls]
    assert kinds[:3] == ["patch_status", "patch_index", "apply Job"]
    assert api.index is not None
    assert api.index["metadata"]["finalizers"] == [api_resource.FINALIZER]
    assert api.index["status"]["phase"] == "Building"


def test_a_failing_reconcile_is_retried_with_backoff_and_counted() -> None:
    forbidden = api_error(403, "Forbidden", "faissindexes is forbidden")
    api = RecordingApi(index=body(), claims={"embeddings", "faiss-artifacts"}, failures={"patch_status": [forbidden] * 3})

    async def scenario() -> reconciler.Reconciler:
        loop, _ = make(api)
        loop.trigger(("search", "alerts"))
        await until(lambda: any(c[0] == "patch_index" for c in api.calls))
        await loop.stop()
        return loop

    loop = asyncio.run(scenario())
    assert loop.metrics.registry.get_sample_value("faiss_operator_reconcile_errors_total") == 3.0


def test_the_worker_ends_when_the_index_is_gone() -> None:
    api = RecordingApi(index=None)

    async def scenario() -> list[tuple[str, str]]:
        loop, _ = make(api)
        loop.trigger(("search", "alerts"))
        await until(lambda: not loop.workers())
        return loop.workers()

    assert asyncio.run(scenario()) == []
    assert api.calls == []  # the pass read the cache


def test_the_worker_ends_without_an_error_when_the_cached_index_is_gone_from_the_api_server() -> None:
    # The cache still shows the FaissIndex (a watch that never delivered its deletion); the API
    # server answers 404 on its status patch.
    api = RecordingApi(index=body(), claims={"embeddings", "faiss-artifacts"},
                       failures={"patch_status": [api_error(404, "Not Found")]})  # fmt: skip

    async def scenario() -> reconciler.Reconciler:
        loop, _ = make(api)
        loop.trigger(("search", "alerts"))
        await until(lambda: not loop.workers())
        return loop

    loop = asyncio.run(scenario())
    assert [c[0] for c in api.calls] == ["patch_status"]
    assert not loop.metrics.registry.get_sample_value("faiss_operator_reconcile_errors_total")


def test_a_child_event_reaches_its_index_also_for_a_hashed_long_name() -> None:
    long_name = "a" * 70
    api = RecordingApi(index=None)

    async def scenario() -> list[str]:
        loop, _ = make(api)
        loop.index_seen("search", long_name)
        await until(lambda: not loop.workers())
        loop.index_seen("search", long_name)  # a new event: the mapping is remembered again
        loop.child_changed("search", manifests.label_value(long_name))
        names = [name for _, name in loop.workers()]
        await loop.stop()
        return names

    assert asyncio.run(scenario()) == [long_name]


def test_backoff_doubles_to_its_limit() -> None:
    timing = reconciler.Timing(error_backoff_seconds=1, max_error_backoff_seconds=60)
    assert [timing.backoff(n) for n in (1, 2, 3, 6, 7, 20)] == [1, 2, 4, 32, 60, 60]



def test_a_bug_in_a_pass_is_logged_with_its_traceback_and_the_next_pass_runs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = reconciler.deciding.decide
    calls = []

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a bug")
        return real(*args, **kwargs)

    monkeypatch.setattr(reconciler.deciding, "decide", flaky)
    api = RecordingApi(index=body(), claims={"embeddings", "faiss-artifacts"})

    async def scenario() -> None:
        loop, _ = make(api)
        loop.trigger(("search", "alerts"))
        await until(lambda: any(c[0] == "patch_status" for c in api.calls))
        await loop.stop()

    with caplog.at_level(logging.ERROR, logger="faiss_operator.controller"):
        asyncio.run(scenario())
    (failure,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert failure.getMessage().startswith("Failed to reconcile FaissIndex search/alerts (RuntimeError: a bug); retrying in")
    assert failure.exc_info is not None


def test_an_illegal_transition_is_refused_whole_said_once_and_the_worker_goes_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A controller bug (a move the transition tables do not list) writes nothing: no status, no
    child, no annotation; it is logged with its traceback, counted, and said in one Warning Event
    however often the pass is tried again."""

    def buggy(*args: Any, **kwargs: Any) -> Any:
        raise state.IllegalTransition("revision R2: Active -> Building is not in state.TRANSITIONS")

    monkeypatch.setattr(reconciler.deciding, "decide", buggy)
    api = RecordingApi(index=body(), claims={"embeddings", "faiss-artifacts"})

    async def scenario() -> tuple[reconciler.Reconciler, list[str], float | None, float | None]:
        loop, events = make(api)
        first = await loop.reconcile(("search", "alerts"))
        second = await loop.reconcile(("search", "alerts"))
        return loop, events, first, second

    with caplog.at_level(logging.ERROR, logger="faiss_operator.controller"):
        loop, events, first, second = asyncio.run(scenario())
    assert (first, second) == (FAST.resync_seconds, FAST.resync_seconds)
    assert [c for c in api.calls if c[0] != "get_index"] == []
    assert events == ["IllegalTransition"]
    assert loop.metrics.registry.get_sample_value("faiss_operator_reconcile_errors_total") == 2.0
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in failures] == [
        "Refused the plan of FaissIndex search/alerts: revision R2: Active -> Building is not in "
        "state.TRANSITIONS; status and children left as they are"
    ] * 2
    assert all(r.exc_info is not None for r in failures)
