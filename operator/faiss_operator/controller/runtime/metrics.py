"""The operator's own Prometheus metrics, served on `--metrics-port` (prometheus_client).

Operator-wide: reconcile duration and errors, builds by result, rollbacks, the operator's own
requests to the API server by verb, resource and answer (`faiss_operator_api_requests_total`;
Kopf's watches and Events are not among them), and the objects held by each watch-fed cache
(`faiss_operator_watch_cache_objects`, read when scraped). Per FaissIndex
(labels namespace, name): phase (1 for the current phase), ready replicas per revision, the
candidate's traffic weight, and the serving revision's recall and p99 latency. The per-index
series are removed when the FaissIndex is gone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping

import prometheus_client
from prometheus_client import metrics_core, registry as prometheus_registry

from faiss_operator.api import status as api_status
from faiss_operator.controller.decision import observed

PHASES = ("Pending", "Building", "Deploying", "Ready", "Progressing", "RollingBack", "Failed")
# A build ended when its revision leaves the Building state: Failed, or anything else (Built,
# Canary, Active, ... as far as one pass takes it) = Succeeded.
BUILDING, FAILED = "Building", "Failed"


class OperatorMetrics:
    """One set of collectors in `registry` (a fresh registry per instance, so tests do not collide)."""

    def __init__(self, registry: prometheus_client.CollectorRegistry | None = None) -> None:
        self.registry = registry or prometheus_client.CollectorRegistry()
        r = self.registry
        self.reconcile_seconds = prometheus_client.Histogram(
            "faiss_operator_reconcile_duration_seconds",
            "Time of one reconcile of a FaissIndex: observe, decide, apply (seconds)",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.reconcile_errors = prometheus_client.Counter(
            "faiss_operator_reconcile_errors", "Reconciles that failed and were retried later", registry=r
        )
        self.builds = prometheus_client.Counter(
            "faiss_operator_builds", "Builds finished, by result (Succeeded, Failed)", ["result"], registry=r
        )
        self.rollbacks = prometheus_client.Counter(
            "faiss_operator_rollbacks", "Rollbacks started (automatic or by annotation)", registry=r
        )
        self.phase = prometheus_client.Gauge(
            "faiss_index_phase", "1 for the FaissIndex's current phase, 0 for the others", ["namespace", "name", "phase"], registry=r
        )
        self.ready_replicas = prometheus_client.Gauge(
            "faiss_index_ready_replicas", "Ready serving replicas per revision", ["namespace", "name", "revision"], registry=r
        )
        self.weight = prometheus_client.Gauge(
            "faiss_index_candidate_weight_percent", "Share of replicas serving the candidate (percent)", ["namespace", "name"], registry=r
        )
        self.recall = prometheus_client.Gauge(
            "faiss_index_recall", "Recall@k of the serving revision (0..1)", ["namespace", "name"], registry=r
        )
        self.p99 = prometheus_client.Gauge(
            "faiss_index_p99_latency_ms", "p99 search latency of the serving revision (milliseconds)", ["namespace", "name"], registry=r
        )
        self.api_requests = prometheus_client.Counter(
            "faiss_operator_api_requests",
            "Requests of the operator's client to the API server, by verb (get, apply, patch, delete), "
            "resource and answer (HTTP status, or error when none came)",
            ["verb", "resource", "code"],
            registry=r,
        )
        self._lock = threading.Lock()
        self._revisions: dict[tuple[str, str], set[str]] = {}

    def count_request(self, verb: str, resource: str, code: str) -> None:
        """kube_api.RequestCounter: one request made."""
        self.api_requests.labels(verb, resource, code).inc()

    def watch_caches(self, sizes: Callable[[], Mapping[str, int]]) -> None:
        """Report `sizes()` (objects per resource in the watch-fed caches) at every scrape."""
        self.registry.register(_CacheSizes(sizes))

    def serve(self, port: int, address: str = "0.0.0.0") -> None:
        """Serve /metrics on `address:port` from a daemon thread."""
        prometheus_client.start_http_server(port, addr=address, registry=self.registry)

    def record(
        self,
        namespace: str,
        name: str,
        before: api_status.FaissIndexStatus,
        after: api_status.FaissIndexStatus,
        children: observed.Children,
    ) -> None:
        """Update the series of one FaissIndex from the status written and the children seen."""
        old_states = {entry.name: entry.state for entry in before.revisions}
        for entry in after.revisions:
            if old_states.get(entry.name) == BUILDING and entry.state != BUILDING:
                self.builds.labels(FAILED if entry.state == FAILED else "Succeeded").inc()
        if after.phase == "RollingBack" and before.phase != "RollingBack":
            self.rollbacks.inc()
        for phase in PHASES:
            self.phase.labels(namespace, name, phase).set(1 if after.phase == phase else 0)
        ready = _ready_by_revision(children)
        with self._lock:
            for stale in self._revisions.get((namespace, name), set()) - set(ready):
                self.ready_replicas.remove(namespace, name, stale)
            self._revisions[(namespace, name)] = set(ready)
        for revision, count in ready.items():
            self.ready_replicas.labels(namespace, name, revision).set(count)
        weight = after.rollout.actual_weight if after.rollout is not None else None
        self.weight.labels(namespace, name).set(float(weight) if weight is not None else 0.0)
        if after.recall is not None:
            self.recall.labels(namespace, name).set(after.recall)
        if after.p99_latency_ms is not None:
            self.p99.labels(namespace, name).set(after.p99_latency_ms)

    def forget(self, namespace: str, name: str) -> None:
        """Remove every per-index series of a FaissIndex that is gone."""
        for phase in PHASES:
            _remove(self.phase, namespace, name, phase)
        with self._lock:
            revisions = self._revisions.pop((namespace, name), set())
        for revision in revisions:
            _remove(self.ready_replicas, namespace, name, revision)
        for gauge in (self.weight, self.recall, self.p99):
            _remove(gauge, namespace, name)


def _ready_by_revision(children: observed.Children) -> Mapping[str, int]:
    ready: dict[str, int] = {}
    for deployment in children.deployments:
        revision = deployment.revision
        if revision is not None:
            ready[revision] = children.ready_replicas(revision)
    return ready


def _remove(gauge: prometheus_client.Gauge, *labels: str) -> None:
    try:
        gauge.remove(*labels)
    except KeyError:
        pass


class _CacheSizes(prometheus_registry.Collector):
    """faiss_operator_watch_cache_objects{resource}: read from the caches when scraped."""

    def __init__(self, sizes: Callable[[], Mapping[str, int]]) -> None:
        self._sizes = sizes

    def collect(self) -> Iterator[metrics_core.Metric]:
        family = metrics_core.GaugeMetricFamily(
            "faiss_operator_watch_cache_objects", "Objects held in the operator's watch-fed cache, by resource", labels=["resource"]
        )
        try:
            sizes = self._sizes()
        except (LookupError, TimeoutError):  # not attached yet (starting), or the loop is stopping
            sizes = {}
        for resource, count in sorted(sizes.items()):
            family.add_metric([resource], float(count))
        yield family

    def describe(self) -> Iterator[metrics_core.Metric]:
        return iter(())  # no collect() at registration: the caches may not be attached yet
