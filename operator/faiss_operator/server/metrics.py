"""The serving pod's Prometheus metrics, on a registry of its own.

A registry per server (not the process-global default) lets tests run several servers in one
process and keeps library metrics we did not choose out of /metrics. With several serving
processes (serve --workers), every process writes its values to files in a per-pod directory
(prometheus-client's multiprocess mode) and /metrics, in whichever process answers, adds them up:
counters and histograms are summed, requests in flight summed over live processes, `faiss_ready`
the least of the live processes (1 only when all are), the index gauges the largest.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import prometheus_client
from prometheus_client import multiprocess, values

from faiss_operator.contract import serving_http

# Search latency runs from ~0.1 ms (HNSW, small k) to ~100 ms (Flat at 1M); buckets cover both.
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


# The header (and value) that mark the operator's live-analysis traffic, as ASGI spells names.
PROBE_HEADER = serving_http.header_key(serving_http.PROBE_HEADER)
PROBE_VALUE = serving_http.PROBE_VALUE.encode("ascii")
SOURCE_PROBE = "probe"
SOURCE_CLIENT = "client"


def source_of(headers: list[tuple[bytes, bytes]]) -> str:
    """The `source` label of a request, from its raw ASGI headers."""
    for name, value in headers:
        if name == PROBE_HEADER and value.strip() == PROBE_VALUE:
            return SOURCE_PROBE
    return SOURCE_CLIENT


class ServerMetrics:
    def __init__(self, multiprocess_dir: Path | None = None) -> None:
        """`multiprocess_dir`: the pod's metric files directory (processes.metrics_directory), or
        None for a single process."""
        self._multiprocess_dir = multiprocess_dir
        if multiprocess_dir is not None:
            # prometheus-client picks its value class at import; a forked serving process switches it here.
            values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
        self.registry = prometheus_client.CollectorRegistry(auto_describe=True)
        # source="probe" for the operator's live analysis (header X-Faiss-Probe: 1), "client" otherwise,
        # so that dashboards and alerts on user traffic can leave the probes out.
        self.request_seconds = prometheus_client.Histogram(
            "faiss_request_duration_seconds", "Time to answer a request, by endpoint and traffic source.",
            ["endpoint", "source"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.requests = prometheus_client.Counter(
            "faiss_requests", "Requests answered, by endpoint, HTTP status code and traffic source.",
            ["endpoint", "code", "source"], registry=self.registry,
        )
        self.in_flight = prometheus_client.Gauge(
            "faiss_requests_in_flight", "Requests being answered now.", registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.queries = prometheus_client.Counter(
            "faiss_queries", "Query vectors searched (a request may carry several).", registry=self.registry
        )
        self.vectors = prometheus_client.Gauge(
            "faiss_index_vectors", "Vectors in the served index.", registry=self.registry, multiprocess_mode="max",
        )
        self.memory = prometheus_client.Gauge(
            "faiss_index_memory_bytes", "Serialized size of the served index.", registry=self.registry,
            multiprocess_mode="max",
        )
        self.recall = prometheus_client.Gauge(
            "faiss_index_build_recall", "recall@k measured by the build against exact search.",
            ["k"], registry=self.registry, multiprocess_mode="max",
        )
        self.info = prometheus_client.Gauge(
            "faiss_index_info", "Always 1; the labels describe the served revision.",
            ["revision", "index_type", "metric"], registry=self.registry, multiprocess_mode="max",
        )
        self.ready = prometheus_client.Gauge(
            "faiss_ready", "1 once the artifact is verified, loaded and warmed up.", registry=self.registry,
            multiprocess_mode="livemin",
        )

    def exposition(self) -> bytes:
        if self._multiprocess_dir is None:
            return prometheus_client.generate_latest(self.registry)
        registry = prometheus_client.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(self._multiprocess_dir))  # type: ignore[no-untyped-call]
        return prometheus_client.generate_latest(registry)


class SearchTally:
    """Counts of searches, kept in plain integers and added to the Prometheus metrics once per turn
    of the event loop: under load one turn answers a whole batch, and a metric update costs a lock
    and a label lookup per call (and a file write with several processes). The requests in flight
    are published at the same moments, and before every /metrics answer. The latency histogram is
    still observed per request (through pre-bound children), since its buckets need every value."""

    def __init__(self, metrics: ServerMetrics) -> None:
        self._metrics = metrics
        self._seconds = {
            source: metrics.request_seconds.labels(endpoint="search", source=source)
            for source in (SOURCE_CLIENT, SOURCE_PROBE)
        }
        self._counts: dict[tuple[int, str], int] = {}
        self._queries = 0
        self._in_flight = 0
        self._published_in_flight = 0
        self._scheduled = False

    def start(self) -> None:
        """A search request begins (counted in faiss_requests_in_flight until `stop`)."""
        self._in_flight += 1
        self._schedule()

    def stop(self) -> None:
        """A search request ends, answered or not."""
        self._in_flight -= 1
        self._schedule()

    def record(self, status: int, source: str, seconds: float, queries: int) -> None:
        """One answered search: its HTTP status, traffic source, seconds taken and query vectors."""
        self._seconds[source].observe(seconds)
        key = (status, source)
        self._counts[key] = self._counts.get(key, 0) + 1
        self._queries += queries
        self._schedule()

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no loop (a direct call): count now
                self.flush()

    def flush(self) -> None:
        self._scheduled = False
        counts, self._counts = self._counts, {}
        for (status, source), count in counts.items():
            self._metrics.requests.labels(endpoint="search", code=str(status), source=source).inc(count)
        if self._queries:
            self._metrics.queries.inc(self._queries)
            self._queries = 0
        if self._in_flight != self._published_in_flight:
            self._metrics.in_flight.set(self._in_flight)
            self._published_in_flight = self._in_flight
