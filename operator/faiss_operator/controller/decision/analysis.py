"""Analysis verdicts: live recall and latency of the candidate, judged against the gates.

The controller's prober (outside this pure core) sends the revision's stored query sample to
candidate and stable pods and hands back a `Measurement`; `judge` turns it into a verdict.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Literal

from faiss_operator.api import spec as api_spec

Verdict = Literal["Pass", "Fail", "Inconclusive"]
PASS: Verdict = "Pass"
FAIL: Verdict = "Fail"
INCONCLUSIVE: Verdict = "Inconclusive"


@dataclasses.dataclass(frozen=True)
class Probe:
    """What one revision's pods answered to the query sample."""

    samples: int
    errors: int = 0
    recall: float | None = None
    p99_latency_ms: float | None = None
    p50_latency_ms: float | None = None


@dataclasses.dataclass(frozen=True)
class Measurement:
    revision: str
    step: int
    taken_at: datetime.datetime
    candidate: Probe
    stable: Probe | None = None


@dataclasses.dataclass(frozen=True)
class Thresholds:
    min_recall: float | None
    max_p99_latency_ms: float | None
    max_latency_ratio: float | None


@dataclasses.dataclass(frozen=True)
class Result:
    verdict: Verdict
    message: str


def thresholds(spec: api_spec.FaissIndexSpec) -> Thresholds:
    analysis = spec.rollout.analysis
    return Thresholds(
        min_recall=analysis.min_recall if analysis.min_recall is not None else spec.evaluation.min_recall,
        max_p99_latency_ms=(
            analysis.max_p99_latency_ms
            if analysis.max_p99_latency_ms is not None
            else spec.evaluation.max_p99_latency_ms
        ),
        max_latency_ratio=analysis.max_latency_ratio,
    )


def judge(measurement: Measurement, limits: Thresholds) -> Result:
    candidate = measurement.candidate
    if candidate.samples <= 0:
        return Result(INCONCLUSIVE, "no probe of the candidate completed")
    if candidate.errors > 0:
        return Result(FAIL, f"{candidate.errors} of {candidate.samples} probes of the candidate failed")
    if limits.min_recall is not None:
        if candidate.recall is None:
            return Result(INCONCLUSIVE, "the candidate's live recall was not measured")
        if candidate.recall < limits.min_recall:
            return Result(FAIL, f"live recall {candidate.recall:.3f} < {limits.min_recall}")
    if limits.max_p99_latency_ms is not None:
        if candidate.p99_latency_ms is None:
            return Result(INCONCLUSIVE, "the candidate's live p99 latency was not measured")
        if candidate.p99_latency_ms > limits.max_p99_latency_ms:
            return Result(FAIL, f"live p99 {candidate.p99_latency_ms:.2f} ms > {limits.max_p99_latency_ms} ms")
    if limits.max_latency_ratio is not None:
        stable = measurement.stable
        if stable is None or stable.p99_latency_ms is None or candidate.p99_latency_ms is None:
            return Result(INCONCLUSIVE, "p99 latency of candidate and stable needed for maxLatencyRatio")
        bound = stable.p99_latency_ms * limits.max_latency_ratio
        if candidate.p99_latency_ms > bound:
            return Result(
                FAIL,
                f"live p99 {candidate.p99_latency_ms:.2f} ms > {limits.max_latency_ratio} x stable "
                f"{stable.p99_latency_ms:.2f} ms",
            )
    return Result(PASS, "live recall and latency within the gates")
