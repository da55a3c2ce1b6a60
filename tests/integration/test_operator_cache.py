"""The cache-fed operator on the real API server (issue 21): once an index serves, a pass sends
no request, and a restarted operator fills its caches before its first pass, so it rewrites
nothing. Requests are read from the operator's own metrics (faiss_operator_api_requests_total:
its client's requests; Kopf's watches and Events are not among them)."""

from __future__ import annotations

import socket
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from e2e.harness import operator as operator_mod
from e2e.harness.waiting import wait_for
from e2e.stories import data, environment, faissindex

pytestmark = pytest.mark.integration

NAME = "cached"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape_when_up(port: int) -> Samples:
    """As `scrape`, {} while the (re)started operator does not serve its metrics yet."""
    try:
        return scrape(port)
    except OSError:
        return {}


def requests(samples: Samples) -> dict[tuple[str, str], float]:
    """(verb, resource) -> requests so far."""
    found: dict[tuple[str, str], float] = {}
    for (name, labels), value in samples.items():
        if name == "faiss_operator_api_requests_total":
            keys = dict(labels)
            found[(keys["verb"], keys["resource"])] = found.get((keys["verb"], keys["resource"]), 0.0) + value
    return found


def passes(samples: Samples) -> float:
    return samples.get(("faiss_operator_reconcile_duration_seconds_count", ()), 0.0)


def cached(samples: Samples) -> dict[str, float]:
    return {dict(labels)["resource"]: value for (name, labels), value in samples.items()
            if name == "faiss_operator_watch_cache_objects"}  # fmt: skip


@pytest.fixture(scope="module")
def serving(api: client.ApiClient, crd: None, start_operator: Any) -> Iterator[tuple[str, operator_mod.OperatorProcess, int]]:
    """A Flat index served by one replica, reconciled by an operator that looks again every second."""
    core = client.CoreV1Api(api)
    namespace = f"cache-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    try:
        wait_for(lambda: core.read_namespaced_service_account("default", namespace), 30, "default service account")
        data.write_vectors(api, namespace, environment.SOURCE_CLAIM, environment.SOURCE_PATH)
        core.create_namespaced_persistent_volume_claim(namespace, data.claim(environment.ARTIFACTS_CLAIM))
        port = free_port()
        operator = start_operator(namespaces=[namespace], args=["--metrics-port", str(port), "--resync", "1"])
        spec = {"dimension": data.DIMENSION, "indexType": "Flat", "source": {"uri": environment.SOURCE_URI},
                "evaluation": {"k": 10, "queries": 100, "minRecall": 0.5}, "serving": {"replicas": 1}}  # fmt: skip
        objects = client.CustomObjectsApi(api)
        objects.create_namespaced_custom_object(
            faissindex.GROUP, faissindex.VERSION, namespace, faissindex.PLURAL, faissindex.body(NAME, spec))

        def ready() -> bool:
            obj = objects.get_namespaced_custom_object(faissindex.GROUP, faissindex.VERSION, namespace, faissindex.PLURAL, NAME)
            condition = faissindex.condition(obj, "Ready")
            return bool(condition and condition["status"] == "True")

        wait_for(ready, 180, "the index Ready")
        yield namespace, operator, port
    finally:
        core.delete_namespace(namespace)


def quiet_passes(port: int, count: int) -> tuple[dict[tuple[str, str], float], dict[tuple[str, str], float]]:
    """Requests before and after `count` more passes, once a pass has sent none (the status settled)."""

    def settled() -> Samples | None:
        first = scrape(port)
        wait_for(lambda: passes(scrape(port)) >= passes(first) + 1, 30, "one more pass")
        return first if requests(scrape(port)) == requests(first) else None

    start = wait_for(settled, 60, "a pass that sends no request")
    wait_for(lambda: passes(scrape(port)) >= passes(start) + count, 30, f"{count} more passes")
    return requests(start), requests(scrape(port))


def test_a_serving_index_is_reconciled_every_second_without_a_request(serving: tuple[str, operator_mod.OperatorProcess, int]) -> None:
    _, _, port = serving
    before, after = quiet_passes(port, 5)
    assert after == before
    # it did write while it built and deployed, and reads nothing: no get of a child, no list at all
    assert {("apply", "jobs"), ("apply", "deployments"), ("apply", "services"), ("patch", "faissindexes/status")} <= set(before)
    assert {verb for verb, _ in before} <= {"get", "apply", "patch", "delete"}
    assert [resource for verb, resource in before if verb == "get"] in ([], ["faissindexes"])
    sizes = cached(scrape(port))
    assert (sizes["faissindexes"], sizes["deployments"], sizes["services"]) == (1, 1, 1)
    assert sizes["pods"] >= 1 and sizes["persistentvolumeclaims"] == 2


def test_a_restarted_operator_fills_its_caches_before_its_first_pass_and_rewrites_nothing(
    serving: tuple[str, operator_mod.OperatorProcess, int],
) -> None:
    _, operator, port = serving
    operator.restart()
    wait_for(lambda: passes(scrape_when_up(port)) >= 3, 60, "three passes of the restarted operator")
    assert requests(scrape(port)) == {}
    log = operator.current_run_text()
    assert "Created " not in log and "Updated " not in log, log[-3000:]


BURST = 40


def test_a_burst_of_new_indexes_is_written_once_each_and_read_never(api: client.ApiClient, crd: None, start_operator: Any) -> None:
    # Each new FaissIndex costs exactly its status, its finalizer and its build Job: no GET (the
    # finalizer goes over the resourceVersion the pass holds), and no second write of the same
    # status (a pass woken by the watch event of the status write, before the finalizer's, reads
    # the operator's own later write). No artifacts claim: each waits with a status and a Job.
    core, objects = client.CoreV1Api(api), client.CustomObjectsApi(api)
    namespace = f"burst-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    try:
        port = free_port()
        start_operator(namespaces=[namespace], args=["--metrics-port", str(port), "--resync", "1"])
        wait_for(lambda: scrape_when_up(port), 60, "the operator's metrics")
        spec = {"dimension": data.DIMENSION, "indexType": "Flat", "source": {"uri": environment.SOURCE_URI}}
        names = [f"burst-{i:02d}" for i in range(BURST)]
        for name in names:
            objects.create_namespaced_custom_object(
                faissindex.GROUP, faissindex.VERSION, namespace, faissindex.PLURAL, faissindex.body(name, spec))

        def all_written() -> bool:
            listed = objects.list_namespaced_custom_object(faissindex.GROUP, faissindex.VERSION, namespace, faissindex.PLURAL)
            jobs = client.BatchV1Api(api).list_namespaced_job(namespace).items
            return len(jobs) == BURST and all(
                (obj.get("status") or {}).get("observedGeneration") == 1 and obj["metadata"].get("finalizers")
                for obj in listed["items"]
            )

        wait_for(all_written, 120, f"{BURST} statuses, finalizers and Jobs")
        before, after = quiet_passes(port, BURST)
        assert after == before  # settled: later passes send nothing
        assert before == {("patch", "faissindexes/status"): BURST, ("patch", "faissindexes"): BURST, ("apply", "jobs"): BURST}
    finally:
        core.delete_namespace(namespace)
