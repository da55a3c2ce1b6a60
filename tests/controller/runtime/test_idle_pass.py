"""A pass reads the caches and sends only its writes: once nothing changes, it sends nothing.

The story runs the real reconcile (observe from the caches, decide, apply) pass by pass against
the recording API, whose objects the caches show as caught-up watches would, and lists the
requests of each pass.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any, cast

import prometheus_client

from faiss_operator.api import resource as api_resource
from faiss_operator.controller.runtime import applier, caches, kube_api, reconciler
from faiss_operator.controller.runtime import metrics as operator_metrics
from tests.controller import builders
from tests.controller.recording_api import RecordingApi, StateReader

KEY = ("search", "alerts")


def body() -> dict[str, Any]:
    return {
        "apiVersion": api_resource.API_VERSION,
        "kind": api_resource.KIND,
        "metadata": {"name": "alerts", "namespace": "search", "uid": "u1", "resourceVersion": "1", "generation": 1},
        "spec": builders.spec(),
    }


def requests_per_pass(api: RecordingApi, passes: int) -> list[list[tuple[Any, ...]]]:
    loop = reconciler.Reconciler(
        reader=StateReader(api),
        applier=applier.Applier(api=cast(kube_api.KubeApi, api), post_event=lambda b, e: None),
        settings=builders.SETTINGS,
        metrics=operator_metrics.OperatorMetrics(prometheus_client.CollectorRegistry()),
        clock=lambda: builders.T0,
    )

    async def run() -> list[list[tuple[Any, ...]]]:
        each = []
        for _ in range(passes):
            before = len(api.calls)
            await loop.reconcile(KEY)
            each.append([call[:3] if call[0] != "patch_index" else ("patch_index",) for call in api.calls[before:]])
        await loop.stop()
        return each

    return asyncio.run(run())


def test_a_new_index_is_written_once_then_its_idle_passes_send_no_request() -> None:
    api = RecordingApi(index=body(), claims={"embeddings", "faiss-artifacts"})
    assert requests_per_pass(api, 4) == [
        [("patch_status",), ("patch_index",), ("apply", "Job", f"alerts-build-{builders.revision_of(builders.spec())}")],
        [],
        [],
        [],
    ]
    assert [child["kind"] for child in api.children["Job"]] == ["Job"]  # what the next passes saw


def test_an_index_waiting_for_its_claim_sends_no_request_while_it_waits() -> None:
    api = RecordingApi(index=body(), claims=set())  # the source claim is missing: a condition
    assert requests_per_pass(api, 3) == [
        [("patch_status",), ("patch_index",), ("apply", "Job", f"alerts-build-{builders.revision_of(builders.spec())}")],
        [],
        [],
    ]
    assert api.index is not None
    assert {c["type"]: c["reason"] for c in api.index["status"]["conditions"]}["Stalled"] == "ClaimNotFound"


def test_a_pass_woken_by_the_event_of_its_own_status_write_writes_nothing_again() -> None:
    # The first pass writes the status (version 2), the finalizer (3) and the Job. The watch
    # delivers version 2 first and wakes a pass while version 3 and the Job are on their way: that
    # pass reads the operator's own writes (caches.py) and sends nothing. (Read as the watch's
    # version, the index showed an earlier write without the later one, and some 2% of a
    # 1,000-object burst wrote the same thing twice.)
    api = RecordingApi(index=body(), claims={"embeddings", "faiss-artifacts"})
    indexes: dict[tuple[str, str], list[dict[str, Any]]] = {KEY: [body()]}
    claims = {("search", claim): [{"metadata": {"name": claim}}] for claim in api.claims}
    children: dict[str, caches.IndexView] = {plural: {} for _, _, plural in caches.CHILD_RESOURCES}
    cache = caches.Caches({"faissindexes": indexes, "persistentvolumeclaims": claims, **children})
    loop = reconciler.Reconciler(
        reader=cache,
        applier=applier.Applier(api=cast(kube_api.KubeApi, api), post_event=lambda b, e: None, writes=cache),
        settings=builders.SETTINGS,
        metrics=operator_metrics.OperatorMetrics(prometheus_client.CollectorRegistry()),
        clock=lambda: builders.T0,
    )

    async def run() -> list[list[str]]:
        each = []
        for _ in range(2):
            before = len(api.calls)
            await loop.reconcile(KEY)
            each.append([call[0] for call in api.calls[before:]])
            assert api.index is not None
            status_written = {**copy.deepcopy(api.index), "metadata": {**body()["metadata"], "resourceVersion": "2"}}
            indexes[KEY] = [status_written]  # the watch's event of the status write, without the finalizer
        await loop.stop()
        return each

    assert asyncio.run(run()) == [["patch_status", "patch_index", "apply"], []]
