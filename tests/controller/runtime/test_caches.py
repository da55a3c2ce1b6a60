"""The watch-fed caches a pass reads: what each watch event stores, and reading one's own write."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import ValuesView
from typing import Any, cast

import pytest

from faiss_operator.controller.runtime import caches


def obj(kind: str, name: str, version: str = "1", **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": "search", "resourceVersion": version, "labels": labels,
                     "managedFields": [{"manager": "faiss-operator"}]},  # fmt: skip
        "spec": {"replicas": 1},
    }


def test_each_kind_is_keyed_by_its_faissindex_and_kept_without_managed_fields() -> None:
    index = obj("FaissIndex", "alerts")
    job = obj("Job", "alerts-build-1", **{"faiss.dev/index": "alerts"})
    claim = obj("PersistentVolumeClaim", "embeddings")
    slim = {key: value for key, value in index["metadata"].items() if key != "managedFields"}
    assert caches.by_name("search", "alerts", index) == {("search", "alerts"): {**index, "metadata": slim}}
    assert list(caches.by_index_label("search", job["metadata"]["labels"], job)) == [("search", "alerts")]
    assert caches.by_index_label("search", {}, obj("Job", "unlabelled")) == {}
    assert caches.claim_entry("search", "embeddings", claim) == {
        ("search", "embeddings"): {"metadata": {"name": "embeddings", "namespace": "search", "resourceVersion": "1", "labels": {}}}
    }
    assert caches.by_name(None, "cluster-scoped", index) == {}


def filled() -> tuple[caches.Caches, dict[tuple[str, str], list[dict[str, Any]]]]:
    indexes = {("search", "alerts"): [obj("FaissIndex", "alerts", "5")]}
    views = {
        "faissindexes": indexes,
        "jobs": {("search", "alerts"): [obj("Job", "alerts-build-1"), obj("Job", "alerts-cleanup-1")]},
        "pods": {},
        "persistentvolumeclaims": {("search", "embeddings"): [{"metadata": {"name": "embeddings"}}]},
    }
    return caches.Caches(views), indexes


def test_a_pass_reads_the_index_its_children_and_claims_from_memory() -> None:
    cache, _ = filled()
    found = cache.index("search", "alerts")
    assert found is not None and found["metadata"]["resourceVersion"] == "5"
    assert cache.index("search", "other") is None
    assert [job["metadata"]["name"] for job in cache.children("jobs", "search", "alerts")] == ["alerts-build-1", "alerts-cleanup-1"]
    assert cache.children("pods", "search", "alerts") == []
    assert cache.claim("search", "embeddings") == {"metadata": {"name": "embeddings"}}
    assert cache.claim("search", "artifacts") is None
    assert cache.sizes() == {"faissindexes": 1, "jobs": 2, "persistentvolumeclaims": 1, "pods": 0}


def test_the_operators_own_status_write_is_read_until_the_watch_shows_another_version() -> None:
    cache, indexes = filled()
    cache.applied({**obj("FaissIndex", "alerts", "6"), "status": {"phase": "Building"}})
    read = cache.index("search", "alerts")
    assert read is not None and (read["metadata"]["resourceVersion"], read["status"]) == ("6", {"phase": "Building"})
    assert "managedFields" not in read["metadata"]
    indexes[("search", "alerts")] = [{**obj("FaissIndex", "alerts", "7"), "status": {"phase": "Ready"}}]  # the watch caught up
    read = cache.index("search", "alerts")
    assert read is not None and (read["metadata"]["resourceVersion"], read["status"]) == ("7", {"phase": "Ready"})
    indexes[("search", "alerts")] = [obj("FaissIndex", "alerts", "5")]  # the write is forgotten for good
    read = cache.index("search", "alerts")
    assert read is not None and read["metadata"]["resourceVersion"] == "5"


def test_the_watch_delivering_an_earlier_write_of_the_same_pass_does_not_hide_the_later_one() -> None:
    # A pass patches the status (version 6), then the finalizer (version 7); the watch delivers
    # version 6 first. Reading 6 would show no finalizer yet, and the pass it wakes would write
    # again what the pass before it wrote.
    cache, indexes = filled()
    status_written = {**obj("FaissIndex", "alerts", "6"), "status": {"phase": "Building"}}
    cache.applied(status_written)
    finalized = {**status_written, "metadata": {**obj("FaissIndex", "alerts", "7")["metadata"], "finalizers": ["faiss.dev/cleanup"]}}
    cache.applied(finalized)
    indexes[("search", "alerts")] = [status_written]  # the status write's event
    read = cache.index("search", "alerts")
    assert read is not None and (read["metadata"]["resourceVersion"], read["metadata"].get("finalizers")) == ("7", ["faiss.dev/cleanup"])
    indexes[("search", "alerts")] = [finalized]  # the finalizer write's event
    read = cache.index("search", "alerts")
    assert read is not None and read["metadata"]["resourceVersion"] == "7"
    assert cache._written == {}  # caught up: the watch is the truth again


def test_a_written_object_deleted_since_reads_as_gone_and_opaque_versions_count_as_news() -> None:
    cache, indexes = filled()
    cache.applied({**obj("FaissIndex", "alerts", "6"), "status": {"phase": "Building"}})
    del indexes[("search", "alerts")]  # deleted by someone else; the watch shows it
    assert cache.index("search", "alerts") is None
    indexes[("search", "alerts")] = [obj("FaissIndex", "alerts", "a")]
    cache.applied({**obj("FaissIndex", "alerts", "b"), "status": {"phase": "Building"}})
    indexes[("search", "alerts")] = [obj("FaissIndex", "alerts", "c")]  # not integers: anything else is news
    read = cache.index("search", "alerts")
    assert read is not None and read["metadata"]["resourceVersion"] == "c"


def test_a_created_child_is_read_before_its_watch_event_and_a_deleted_one_is_gone_at_once() -> None:
    cache, _ = filled()
    jobs = cast(dict[tuple[str, str], list[dict[str, Any]]], cache._views["jobs"])
    cache.applied(obj("Job", "alerts-build-2", "9", **{"faiss.dev/index": "alerts"}))
    cache.deleted("Job", "search", "alerts", "alerts-cleanup-1")
    names = [job["metadata"]["name"] for job in cache.children("jobs", "search", "alerts")]
    assert names == ["alerts-build-1", "alerts-build-2"]
    # the watch delivers both: the cache shows what it holds
    jobs[("search", "alerts")] = [obj("Job", "alerts-build-1"), obj("Job", "alerts-build-2", "9")]
    assert [job["metadata"]["name"] for job in cache.children("jobs", "search", "alerts")] == ["alerts-build-1", "alerts-build-2"]
    assert cache._written == {}


def test_a_deleted_pod_is_gone_at_once_too() -> None:
    cache = caches.Caches({"pods": {("search", "alerts"): [obj("Pod", "alerts-build-1-x", "3")]}})
    cache.deleted("Pod", "search", "alerts", "alerts-build-1-x")
    assert cache.children("pods", "search", "alerts") == []


def test_a_write_the_watch_never_showed_is_forgotten_after_its_ttl() -> None:
    now = [100.0]
    cache = caches.Caches({"jobs": {}}, clock=lambda: now[0])
    cache.applied(obj("Job", "alerts-build-2", "9", **{"faiss.dev/index": "alerts"}))
    assert len(cache.children("jobs", "search", "alerts")) == 1
    now[0] += caches.WRITE_TTL_SECONDS + 1  # created and gone again before any pass read it
    assert cache.children("jobs", "search", "alerts") == []


def test_a_deleted_index_reads_as_gone() -> None:
    cache, indexes = filled()
    del indexes[("search", "alerts")]
    assert cache.index("search", "alerts") is None


def test_a_cache_read_before_the_operator_started_says_so() -> None:
    with pytest.raises(LookupError, match="the jobs cache is not attached"):
        caches.Caches().children("jobs", "search", "alerts")


def test_a_namespace_is_terminating_once_the_watch_shows_its_deletion() -> None:
    active = {"metadata": {"name": "search", "resourceVersion": "1"}, "status": {"phase": "Active"}}
    deleted = {"metadata": {"name": "search", "resourceVersion": "2", "deletionTimestamp": "2026-12-07T04:00:00Z"},
               "status": {"phase": "Terminating"}}  # fmt: skip
    entry = caches.namespace_entry("search", deleted)
    assert entry == {("search", ""): {"metadata": deleted["metadata"], "status": {"phase": "Terminating"}}}
    seen = {**caches.namespace_entry("search", active), **caches.namespace_entry("other", {})}
    cache = caches.Caches({"namespaces": {key: [value] for key, value in seen.items()}})
    assert not cache.namespace_terminating("search")
    assert not cache.namespace_terminating("unseen")
    cache.attach({"namespaces": {key: [value] for key, value in entry.items()}})
    assert cache.namespace_terminating("search")
    assert not caches.Caches({}).namespace_terminating("search")  # no namespace watch attached


class _RecordingIndex(dict[tuple[str, str], list[dict[str, Any]]]):
    """A Kopf index that notes the thread each count is made on."""

    threads: list[str] = []

    def values(self) -> ValuesView[list[dict[str, Any]]]:
        self.threads.append(threading.current_thread().name)
        return super().values()


def test_cache_sizes_are_counted_on_the_event_loop_that_changes_the_indexes() -> None:
    # Kopf changes its indexes on the event loop; counted from the metrics server's thread during
    # a burst, a dict changed size under the iteration and the scrape answered 500.
    plurals = (caches.INDEXES, caches.CLAIMS, caches.NAMESPACES, *(plural for _, _, plural in caches.CHILD_RESOURCES))
    kwargs = {caches.index_id(plural): _RecordingIndex({("search", "alerts"): [obj("X", "x")]}) for plural in plurals}
    cache = caches.Caches()
    loop = asyncio.new_event_loop()
    kopf_thread = threading.Thread(target=loop.run_forever, name="kopf-loop", daemon=True)
    kopf_thread.start()

    async def startup() -> None:
        cache.attach_kopf(kwargs)

    try:
        asyncio.run_coroutine_threadsafe(startup(), loop).result(timeout=10)
        sizes = cache.sizes()  # from this thread, as the metrics server's scrape
    finally:
        loop.call_soon_threadsafe(loop.stop)
        kopf_thread.join(timeout=10)
        loop.close()
    assert sizes == {plural: 1 for plural in sorted(plurals)}
    assert set(_RecordingIndex.threads) == {"kopf-loop"}
