"""The operator's metrics follow the status it writes and the children it sees."""

from __future__ import annotations

import prometheus_client

from faiss_operator.api import status as api_status
from faiss_operator.controller.decision import observed
from faiss_operator.controller.runtime import child_views
from faiss_operator.controller.runtime import metrics as operator_metrics


def deployment(revision: str, ready: int) -> observed.ObservedDeployment:
    return child_views.deployment_view(
        {"metadata": {"name": f"x-{revision}", "labels": {"faiss.dev/revision": revision}}, "status": {"readyReplicas": ready}}
    )


def revision(name: str, state: str) -> dict[str, object]:
    return {"name": name, "state": state, "indexType": "HNSW", "artifact": "pvc://a/x", "artifactKey": "x",
            "createdAt": "2026-01-01T00:00:00Z"}  # fmt: skip


def status(**values: object) -> api_status.FaissIndexStatus:
    return api_status.FaissIndexStatus.model_validate(values)


def test_builds_rollbacks_and_per_index_series() -> None:
    m = operator_metrics.OperatorMetrics(prometheus_client.CollectorRegistry())
    before = status(phase="Progressing", revisions=[revision("new", "Building"), revision("bad", "Building"), revision("old", "Active")])
    after = status(
        phase="RollingBack",
        recall=0.97,
        p99LatencyMs=1.5,
        rollout={"mode": "Rollback", "actualWeight": 25, "stepStartedAt": "2026-01-01T00:00:00Z"},
        revisions=[revision("new", "Canary"), revision("bad", "Failed"), revision("old", "Active")],
    )
    seen = observed.Children(deployments=[deployment("old", 3), deployment("new", 1)])
    m.record("search", "alerts", before, after, seen)
    m.record("search", "alerts", after, after, seen)  # the same status again counts nothing twice
    value = m.registry.get_sample_value
    assert value("faiss_operator_builds_total", {"result": "Succeeded"}) == 1.0  # Building -> Canary in one pass
    assert value("faiss_operator_builds_total", {"result": "Failed"}) == 1.0
    assert value("faiss_operator_rollbacks_total") == 1.0
    labels = {"namespace": "search", "name": "alerts"}
    assert value("faiss_index_phase", {**labels, "phase": "RollingBack"}) == 1.0
    assert value("faiss_index_phase", {**labels, "phase": "Progressing"}) == 0.0
    assert value("faiss_index_ready_replicas", {**labels, "revision": "old"}) == 3.0
    assert value("faiss_index_ready_replicas", {**labels, "revision": "new"}) == 1.0
    assert value("faiss_index_candidate_weight_percent", labels) == 25.0
    assert (value("faiss_index_recall", labels), value("faiss_index_p99_latency_ms", labels)) == (0.97, 1.5)

    m.record("search", "alerts", after, after, observed.Children(deployments=[deployment("old", 3)]))
    assert value("faiss_index_ready_replicas", {**labels, "revision": "new"}) is None
    m.forget("search", "alerts")
    assert value("faiss_index_phase", {**labels, "phase": "RollingBack"}) is None
    assert value("faiss_index_ready_replicas", {**labels, "revision": "old"}) is None


def test_client_requests_are_counted_by_verb_resource_and_answer_and_cache_sizes_read_when_scraped() -> None:
    m = operator_metrics.OperatorMetrics(prometheus_client.CollectorRegistry())
    sizes = {"faissindexes": 3, "jobs": 1}
    m.watch_caches(lambda: sizes)
    m.count_request("apply", "jobs", "200")
    m.count_request("apply", "jobs", "200")
    m.count_request("patch", "faissindexes/status", "409")
    sizes["jobs"] = 2  # read at scrape time, not at registration
    text = prometheus_client.generate_latest(m.registry).decode()
    lines = sorted(line for line in text.splitlines() if line.startswith(("faiss_operator_api_requests_total", "faiss_operator_watch")))
    assert lines == [
        'faiss_operator_api_requests_total{code="200",resource="jobs",verb="apply"} 2.0',
        'faiss_operator_api_requests_total{code="409",resource="faissindexes/status",verb="patch"} 1.0',
        'faiss_operator_watch_cache_objects{resource="faissindexes"} 3.0',
        'faiss_operator_watch_cache_objects{resource="jobs"} 2.0',
    ]
