"""A pass reads the caches and sends only its writes: once nothing changes, it sends nothing.

The story runs the real reconcile (observe from the caches, decide, apply) pass by pass against
the recording API, whose objects the caches show as caught-up watches would, and lists the
requests of each pass.
"""

from __future__ import annotations

import asyncio
import base64
import copy
from typing import Any, cast

import prometheus_client

from e2e.harness import objectstore
from faiss_operator.api import resource as api_resource
from faiss_operator.controller.decision import observed
from faiss_operator.controller.runtime import applier, caches, kube_api, reconciler, source_objects
from faiss_operator.controller.runtime import metrics as operator_metrics
from tests.controller import builders
from tests.controller.recording_api import RecordingApi, StateReader
from tests.s3_store import bucket, client_for, object_store  # noqa: F401 (fixtures)

KEY = ("search", "alerts")


def body(wire: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": api_resource.API_VERSION,
        "kind": api_resource.KIND,
        "metadata": {"name": "alerts", "namespace": "search", "uid": "u1", "resourceVersion": "1", "generation": 1},
        "spec": wire or builders.spec(),
    }


def reconciler_over(
    api: RecordingApi, sources: source_objects.SourceObjects | None, reader: StateReader | None = None
) -> reconciler.Reconciler:
    """A reconciler writing `api` and reading it (through `reader`), its clock stopped at builders.T0."""
    return reconciler.Reconciler(
        reader=reader or StateReader(api),
        applier=applier.Applier(api=cast(kube_api.KubeApi, api), post_event=lambda b, e: None),
        settings=builders.SETTINGS,
        metrics=operator_metrics.OperatorMetrics(prometheus_client.CollectorRegistry()),
        clock=lambda: builders.T0,
        sources=sources,
    )


def requests_per_pass(
    api: RecordingApi, passes: int, *, sources: source_objects.SourceObjects | None = None
) -> list[list[tuple[Any, ...]]]:
    loop = reconciler_over(api, sources)

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


def test_an_index_with_an_s3_source_reads_its_secret_and_heads_it_once_then_sends_nothing(
    object_store: objectstore.ObjectStore, bucket: str  # noqa: F811
) -> None:
    client_for(object_store).put_object(Bucket=bucket, Key="v.npy", Body=b"embeddings")
    store = {"endpoint": object_store.endpoint_url, "region": objectstore.REGION, "addressingStyle": "path",
             "credentialsSecretRef": {"name": "faiss-s3"}}  # fmt: skip
    wire = builders.spec(source={"uri": f"s3://{bucket}/v.npy"}, objectStore=store,
                         artifacts={"uri": f"s3://{bucket}/artifacts"})  # fmt: skip
    keys = object_store.credentials
    api = RecordingApi(index=body(wire), secrets={"faiss-s3": {
        "AWS_ACCESS_KEY_ID": base64.b64encode(keys.access_key_id.encode()).decode(),
        "AWS_SECRET_ACCESS_KEY": base64.b64encode(keys.secret_access_key.encode()).decode(),
    }})  # fmt: skip
    sources = source_objects.SourceObjects(secrets=api.get_secret_data, default_store=None, environ={})
    passes = requests_per_pass(api, 4, sources=sources)
    assert api.index is not None
    revision = api.index["status"]["candidateRevision"]
    assert passes == [
        [("get_secret_data", "faiss-s3"), ("patch_status",), ("patch_index",),
         ("apply", "Job", f"alerts-build-{revision}")],
        [],
        [],
        [],
    ]  # fmt: skip
    assert sources.heads == 1
    # The revision is the URI with the object's ETag, not the URI alone.
    assert revision != builders.revision_of(wire)


def test_a_spec_changed_while_the_store_was_asked_is_decided_on_the_next_pass_not_with_the_old_answer() -> None:
    # The look at the source objects may wait on the store (up to its deadline). The user edits
    # the spec meanwhile: the pass writes nothing from the answer about the old spec and comes
    # back at once; the next pass looks at the new spec's object and writes its revision.
    first = builders.spec(source={"uri": "s3://bkt/v1.npy"})
    edited = builders.spec(source={"uri": "s3://bkt/v2.npy"})
    api = RecordingApi(index=body(first), claims={"faiss-artifacts"})
    asked: list[tuple[str, ...]] = []

    def describe(uris: tuple[str, ...], settings: Any, keys: Any) -> dict[str, observed.SourceObject]:
        asked.append(uris)
        if len(asked) == 1:  # the edit lands while the store is being asked
            assert api.index is not None
            api.index["spec"], api.index["metadata"]["generation"] = edited, 2
        return {uri: observed.SourceObject(identity=f"etag:{uri[-6:-4]}") for uri in uris}

    loop = reconciler_over(api, source_objects.SourceObjects(secrets=api.get_secret_data, default_store=None,
                                                             environ={}, describe_objects=describe))  # fmt: skip

    async def run() -> tuple[float | None, list[tuple[Any, ...]]]:
        requeue = await loop.reconcile(KEY)
        calls = list(api.calls)
        await loop.reconcile(KEY)
        await loop.stop()
        return requeue, calls

    requeue, first_pass = asyncio.run(run())
    assert (requeue, first_pass) == (reconciler.Timing().min_requeue_seconds, [])
    assert asked == [("s3://bkt/v1.npy",), ("s3://bkt/v2.npy",)]
    assert api.index is not None
    revision = api.index["status"]["candidateRevision"]
    assert [call[:3] if call[0] == "apply" else call[:1] for call in api.calls] == [
        ("patch_status",), ("patch_index",), ("apply", "Job", f"alerts-build-{revision}")
    ]
    assert api.index["spec"]["source"]["uri"] == "s3://bkt/v2.npy"


def test_only_a_pass_that_waited_on_the_store_reads_the_caches_again() -> None:
    api = RecordingApi(index=body(builders.spec(source={"uri": "s3://bkt/v.npy"})), claims={"faiss-artifacts"})
    reads: list[str] = []

    class CountingReader(StateReader):
        def index(self, namespace: str, name: str) -> dict[str, Any] | None:
            reads.append(name)
            return super().index(namespace, name)

    def describe(uris: tuple[str, ...], settings: Any, keys: Any) -> dict[str, observed.SourceObject]:
        return {uri: observed.SourceObject(identity="etag:aa") for uri in uris}

    sources = source_objects.SourceObjects(secrets=api.get_secret_data, default_store=None, environ={},
                                           describe_objects=describe)  # fmt: skip
    loop = reconciler_over(api, sources, CountingReader(api))

    async def run() -> list[int]:
        each = []
        for _ in range(3):
            before = len(reads)
            await loop.reconcile(KEY)
            each.append(len(reads) - before)
        await loop.stop()
        return each

    # The first pass looks at the store, then reads the FaissIndex again; the others answer from
    # the cache of source objects and read it once.
    assert asyncio.run(run()) == [2, 1, 1]
    assert sources.looks == 1
