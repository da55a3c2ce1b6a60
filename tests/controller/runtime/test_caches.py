"""The watch-fed caches a pass reads: what each watch event stores, and reading one's own write."""

from __future__ import annotations

from typing import Any

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


def test_the_operators_own_write_is_read_until_the_watch_brings_a_newer_version() -> None:
    cache, indexes = filled()
    before = obj("FaissIndex", "alerts", "5")
    after = {**obj("FaissIndex", "alerts", "6"), "status": {"phase": "Building"}}
    cache.wrote(before, after)
    read = cache.index("search", "alerts")
    assert read is not None and (read["metadata"]["resourceVersion"], read["status"]) == ("6", {"phase": "Building"})
    assert "managedFields" not in read["metadata"]
    indexes[("search", "alerts")] = [{**obj("FaissIndex", "alerts", "7"), "status": {"phase": "Ready"}}]  # the watch caught up
    read = cache.index("search", "alerts")
    assert read is not None and (read["metadata"]["resourceVersion"], read["status"]) == ("7", {"phase": "Ready"})
    indexes[("search", "alerts")] = [obj("FaissIndex", "alerts", "5")]  # the overlay is gone for good
    read = cache.index("search", "alerts")
    assert read is not None and read["metadata"]["resourceVersion"] == "5"


def test_a_write_that_changed_nothing_leaves_no_overlay_and_a_deleted_index_reads_as_gone() -> None:
    cache, indexes = filled()
    same = obj("FaissIndex", "alerts", "5")
    cache.wrote(same, same)
    cache.wrote(same, obj("FaissIndex", "alerts", "6"))
    del indexes[("search", "alerts")]
    assert cache.index("search", "alerts") is None


def test_a_cache_read_before_the_operator_started_says_so() -> None:
    with pytest.raises(LookupError, match="the jobs cache is not attached"):
        caches.Caches().children("jobs", "search", "alerts")
