"""The prober against real serving processes: live recall and latency per revision, errors, the
deadline, the probe label, and the verdicts `analysis.judge` gives on what it measured."""

from __future__ import annotations

import asyncio
import datetime
import math
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from faiss_operator.controller.decision import actions, analysis
from faiss_operator.controller.runtime import prober
from tests.controller.runtime.prober.conftest import CANDIDATE, EVAL_QUERIES, K, STABLE, build_artifact
from tests.server.conftest import Server, free_port, running_server
from tests.server.test_evaluation_sample import strip_sample

NOW = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.timezone.utc)
LATENCY_QUERIES = prober.DEFAULT_LATENCY_QUERIES
BATCHES = math.ceil((EVAL_QUERIES - LATENCY_QUERIES) / 32)
# per pod: the batches, one untimed request to settle the connection, the single-query requests
REQUESTS_PER_POD = BATCHES + 1 + LATENCY_QUERIES
HANG_TIMEOUT_S = 4.0
GATES = analysis.Thresholds(min_recall=0.95, max_p99_latency_ms=1000.0, max_latency_ratio=None)


def analyze(candidate: str = CANDIDATE, stable: str | None = None, k: int = K) -> actions.Analyze:
    return actions.Analyze(candidate=candidate, stable=stable, step=1, artifact="pvc://faiss-artifacts/x", k=k)


def target(server: Server, revision: str) -> prober.PodTarget:
    return prober.PodTarget(revision=revision, address=server.url)


def dead(revision: str) -> prober.PodTarget:
    return prober.PodTarget(revision=revision, address=f"http://127.0.0.1:{free_port()}")  # nothing listens


def measure(action: actions.Analyze, candidates: list[prober.PodTarget], stables: list[prober.PodTarget],
            **options: Any) -> analysis.Measurement:
    return asyncio.run(prober.measure(action, candidates=candidates, stables=stables, clock=lambda: NOW, **options))


def test_live_recall_is_the_builds_recall_and_the_candidate_passes(
    pods: dict[str, Server], build_report: dict[str, object]
) -> None:
    measurement = measure(analyze(), [target(pods["candidate-a"], CANDIDATE), target(pods["candidate-b"], CANDIDATE)], [])

    probe = measurement.candidate
    assert (measurement.revision, measurement.step, measurement.taken_at, measurement.stable) == (CANDIDATE, 1, NOW, None)
    assert (probe.samples, probe.errors) == (1 + 2 * REQUESTS_PER_POD, 0)  # the sample fetch, then both pods
    assert probe.recall == pytest.approx(build_report["recall"], abs=0.002)  # same queries, same truth, same index
    assert probe.p50_latency_ms is not None and probe.p99_latency_ms is not None
    assert 0 < probe.p50_latency_ms <= probe.p99_latency_ms < 1000
    assert analysis.judge(measurement, GATES) == analysis.Result("Pass", "live recall and latency within the gates")


def test_a_stable_serving_with_ef_search_1_shows_lower_recall(pods: dict[str, Server]) -> None:
    measurement = measure(analyze(stable=STABLE), [target(pods["candidate-a"], CANDIDATE)],
                          [target(pods["stable"], STABLE)])

    assert measurement.stable is not None and measurement.stable.errors == 0
    assert measurement.stable.samples == REQUESTS_PER_POD
    assert measurement.candidate.recall is not None and measurement.stable.recall is not None
    assert measurement.stable.recall < measurement.candidate.recall - 0.03
    assert measurement.stable.p99_latency_ms is not None
    # both p99s measured, so maxLatencyRatio can be judged (a generous bound: the timings are real)
    assert analysis.judge(measurement, analysis.Thresholds(None, None, 1000.0)).verdict == "Pass"


def test_a_candidate_serving_with_ef_search_1_fails_the_recall_gate(pods: dict[str, Server]) -> None:
    """The story of a search-parameters-only revision with efSearch 1 against a high minRecall."""
    measurement = measure(analyze(candidate=STABLE), [target(pods["stable"], STABLE)], [])

    assert measurement.candidate.errors == 0 and measurement.candidate.recall is not None
    result = analysis.judge(measurement, GATES)
    assert result == analysis.Result("Fail", f"live recall {measurement.candidate.recall:.3f} < 0.95")


def test_a_dead_candidate_pod_counts_errors_and_fails(pods: dict[str, Server]) -> None:
    measurement = measure(analyze(), [dead(CANDIDATE), target(pods["candidate-a"], CANDIDATE)], [])

    probe = measurement.candidate
    # the dead pod: the sample fetch, every batch, the settling request; then no single queries
    assert probe.errors == 1 + BATCHES + 1
    assert probe.samples == 1 + 1 + BATCHES + 1 + REQUESTS_PER_POD  # the live pod gave the sample and answered all
    assert probe.recall is not None and probe.recall > 0.95  # from the answers that came
    assert analysis.judge(measurement, GATES) == analysis.Result(
        "Fail", f"{probe.errors} of {probe.samples} probes of the candidate failed")


def test_unreachable_candidate_pods_fail_and_a_dead_stable_is_counted_apart(pods: dict[str, Server]) -> None:
    measurement = measure(analyze(stable=STABLE), [dead(CANDIDATE), dead(CANDIDATE)], [dead(STABLE)])

    assert measurement.candidate == analysis.Probe(samples=2, errors=2)  # the two sample fetches
    assert measurement.stable == analysis.Probe(samples=0)  # nothing to send without a sample
    assert analysis.judge(measurement, GATES).verdict == "Fail"


def test_non_2xx_and_answers_of_another_revision_are_errors(artifact: Path, tmp_path: Path, pods: dict[str, Server]) -> None:
    with running_server(artifact, tmp_path / "small.log", "--revision", STABLE, "--max-batch", "4") as small:
        small.wait_for("/readyz", 200)
        measurement = measure(
            analyze(stable=STABLE), [target(pods["candidate-a"], CANDIDATE)],
            [target(small, STABLE), target(pods["candidate-b"], STABLE)],  # candidate-b answers as cand01
        )
        refused = probe_count(small, "search", code="413")

    assert measurement.candidate.errors == 0
    assert measurement.stable is not None
    # the small pod refuses each batch of 32 (413) but answers single queries; candidate-b's every answer is refused
    assert measurement.stable.errors == BATCHES + REQUESTS_PER_POD - LATENCY_QUERIES
    assert measurement.stable.samples == 2 * REQUESTS_PER_POD - LATENCY_QUERIES
    assert measurement.stable.recall is not None and measurement.stable.p99_latency_ms is not None
    assert refused == BATCHES


def test_a_hung_pod_ends_within_the_deadline_without_blocking_the_event_loop(artifact: Path, tmp_path: Path,
                                                                              pods: dict[str, Server]) -> None:
    async def measured_with_ticker(action: actions.Analyze, candidates: list[prober.PodTarget],
                                   stables: list[prober.PodTarget]) -> tuple[analysis.Measurement, float, float]:
        longest_gap = 0.0

        async def tick() -> None:
            nonlocal longest_gap
            last = time.monotonic()
            while True:
                await asyncio.sleep(0.01)
                longest_gap = max(longest_gap, time.monotonic() - last)
                last = time.monotonic()

        ticker = asyncio.create_task(tick())
        started = time.monotonic()
        result = await prober.measure(action, candidates=candidates, stables=stables, clock=lambda: NOW,
                                      timeout_seconds=HANG_TIMEOUT_S, sample_queries=100, latency_queries=20)
        elapsed = time.monotonic() - started
        ticker.cancel()
        return result, elapsed, longest_gap

    with running_server(artifact, tmp_path / "hung.log", "--revision", STABLE, "--workers", "1") as hung:  # one process to SIGSTOP
        hung.wait_for("/readyz", 200)
        os.kill(hung.process.pid, signal.SIGSTOP)  # accepts connections (the kernel does), answers nothing
        try:
            with_hung_stable, elapsed, gap = asyncio.run(measured_with_ticker(
                analyze(stable=STABLE), [target(pods["candidate-a"], CANDIDATE)], [target(hung, STABLE)]))
            assert elapsed < HANG_TIMEOUT_S + 1.0 and gap < 1.0  # blocking I/O would stall the loop for HANG_TIMEOUT_S
            with_hung_candidate, elapsed, gap = asyncio.run(measured_with_ticker(
                analyze(candidate=STABLE), [target(hung, STABLE)], []))
            assert elapsed < HANG_TIMEOUT_S + 1.0 and gap < 1.0  # blocking I/O would stall the loop for HANG_TIMEOUT_S
        finally:
            os.kill(hung.process.pid, signal.SIGCONT)

    assert with_hung_stable.candidate.errors == 0 and with_hung_stable.candidate.recall is not None
    assert with_hung_stable.stable is not None and with_hung_stable.stable.errors >= 1
    assert with_hung_stable.stable.recall is None  # no answer came
    assert with_hung_candidate.candidate == analysis.Probe(samples=1, errors=1)
    assert analysis.judge(with_hung_candidate, GATES).verdict == "Fail"


def test_probe_requests_are_counted_under_the_probe_label(pods: dict[str, Server]) -> None:
    server = pods["candidate-b"]
    searches, samples = probe_count(server, "search"), probe_count(server, "evaluation-sample")
    users = probe_count(server, "search", source="client")
    measure(analyze(), [target(server, CANDIDATE)], [])

    assert probe_count(server, "search") - searches == REQUESTS_PER_POD
    assert probe_count(server, "evaluation-sample") - samples == 1
    assert probe_count(server, "search", source="client") == users  # none of it counted as users' traffic


def probe_count(server: Server, endpoint: str, *, code: str = "200", source: str = "probe") -> float:
    text = server.request("GET", "/metrics").body.decode()
    found = re.search(rf'faiss_requests_total{{code="{code}",endpoint="{endpoint}",source="{source}"}} (\S+)', text)
    return float(found.group(1)) if found else 0.0


def test_a_candidate_without_a_stored_sample_is_inconclusive(tmp_path: Path) -> None:
    artifact = build_artifact(tmp_path, index_type="Flat")
    strip_sample(artifact)
    with running_server(artifact, tmp_path / "log") as server:
        server.wait_for("/readyz", 200)
        measurement = measure(analyze(stable=STABLE), [target(server, CANDIDATE)], [target(server, STABLE)])

    assert measurement.candidate == analysis.Probe(samples=0)
    assert analysis.judge(measurement, GATES) == analysis.Result("Inconclusive", "no probe of the candidate completed")


def test_no_ready_pods_is_inconclusive() -> None:
    measurement = measure(analyze(stable=STABLE), [], [])

    assert measurement == analysis.Measurement(
        revision=CANDIDATE, step=1, taken_at=NOW, candidate=analysis.Probe(samples=0), stable=analysis.Probe(samples=0))
    assert analysis.judge(measurement, GATES).verdict == "Inconclusive"


def test_recall_at_a_smaller_k_than_the_sample(pods: dict[str, Server]) -> None:
    at_10 = measure(analyze(candidate=STABLE), [target(pods["stable"], STABLE)], [])
    at_1 = measure(analyze(candidate=STABLE, k=1), [target(pods["stable"], STABLE)], [])

    assert at_10.candidate.recall is not None and at_1.candidate.recall is not None
    assert at_1.candidate.recall != at_10.candidate.recall  # scored on the top 1, not the top 10


@pytest.mark.parametrize("options", [
    {"timeout_seconds": 0.0}, {"concurrency": 0}, {"batch_size": 0}, {"sample_queries": 0}, {"latency_queries": -1},
])
def test_arguments_out_of_range_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="measure: timeout_seconds must be > 0"):
        measure(analyze(), [], [], **options)


@pytest.mark.parametrize("address", [
    "10.0.0.1:8080", "http://:8080", "ftp://x", "http://[::1", "", "http://256.1.1.1:80", "http://localhost:99999",
])
def test_an_address_that_is_not_a_pod_url_is_an_error_not_an_exception(address: str) -> None:
    pod = prober.PodTarget(revision=CANDIDATE, address=address)

    measurement = measure(analyze(stable=STABLE), [pod], [pod], timeout_seconds=2.0)

    assert measurement.candidate == analysis.Probe(samples=1, errors=1)
    assert analysis.judge(measurement, GATES).verdict == "Fail"
