"""Analysis verdicts from live measurements: pass, fail or inconclusive, with the reason."""

from __future__ import annotations

import pytest
from faiss_operator.api import resource
from faiss_operator.controller.decision import analysis

from tests.controller.builders import T0

LIMITS = analysis.Thresholds(min_recall=0.9, max_p99_latency_ms=2.0, max_latency_ratio=1.5)
STABLE = analysis.Probe(samples=100, recall=0.95, p99_latency_ms=1.0)


def measure(candidate: analysis.Probe, stable: analysis.Probe | None = STABLE) -> analysis.Measurement:
    return analysis.Measurement(revision="r", step=0, taken_at=T0, candidate=candidate, stable=stable)


@pytest.mark.parametrize(
    ("candidate", "stable", "limits", "want"),
    [
        (
            analysis.Probe(100, 0, 0.95, 1.2),
            STABLE,
            LIMITS,
            analysis.Result("Pass", "live recall and latency within the gates"),
        ),
        (analysis.Probe(0), STABLE, LIMITS, analysis.Result("Inconclusive", "no probe of the candidate completed")),
        (
            analysis.Probe(100, 3, 0.95, 1.0),
            STABLE,
            LIMITS,
            analysis.Result("Fail", "3 of 100 probes of the candidate failed"),
        ),
        (analysis.Probe(100, 0, 0.85, 1.0), STABLE, LIMITS, analysis.Result("Fail", "live recall 0.850 < 0.9")),
        (
            analysis.Probe(100, 0, None, 1.0),
            STABLE,
            LIMITS,
            analysis.Result("Inconclusive", "the candidate's live recall was not measured"),
        ),
        (analysis.Probe(100, 0, 0.95, 2.5), STABLE, LIMITS, analysis.Result("Fail", "live p99 2.50 ms > 2.0 ms")),
        (
            analysis.Probe(100, 0, 0.95, None),
            STABLE,
            LIMITS,
            analysis.Result("Inconclusive", "the candidate's live p99 latency was not measured"),
        ),
        (
            analysis.Probe(100, 0, 0.95, 1.6),
            STABLE,
            LIMITS,
            analysis.Result("Fail", "live p99 1.60 ms > 1.5 x stable 1.00 ms"),
        ),
        (
            analysis.Probe(100, 0, 0.95, 1.2),
            None,
            LIMITS,
            analysis.Result("Inconclusive", "p99 latency of candidate and stable needed for maxLatencyRatio"),
        ),
        (
            analysis.Probe(100, 0, None, None),
            None,
            analysis.Thresholds(None, None, None),
            analysis.Result("Pass", "live recall and latency within the gates"),
        ),
    ],
)
def test_verdicts(
    candidate: analysis.Probe, stable: analysis.Probe | None, limits: analysis.Thresholds, want: analysis.Result
) -> None:
    assert analysis.judge(measure(candidate, stable), limits) == want


def test_analysis_thresholds_default_to_the_evaluation_gates() -> None:
    spec = resource.parse_spec(
        {"dimension": 4, "source": {"uri": "file:///x"}, "evaluation": {"minRecall": 0.8, "maxP99LatencyMs": 3}}
    )
    assert analysis.thresholds(spec) == analysis.Thresholds(0.8, 3.0, None)
    spec = resource.parse_spec(
        {"dimension": 4, "source": {"uri": "file:///x"}, "evaluation": {"minRecall": 0.8},
         "rollout": {"analysis": {"minRecall": 0.85, "maxLatencyRatio": 1.2}}}
    )  # fmt: skip
    assert analysis.thresholds(spec) == analysis.Thresholds(0.85, None, 1.2)
