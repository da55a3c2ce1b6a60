"""The evaluation gates: whether a revision's measured recall and latency allow it to take traffic."""

from __future__ import annotations

from faiss_operator.api import spec as api_spec
from faiss_operator.api import status as api_status


def failures(spec: api_spec.FaissIndexSpec, metrics: api_status.RevisionMetrics | None) -> list[str]:
    """One line per gate `metrics` fails under `spec.evaluation`; [] when it passes or was not
    measured (a revision reusing an artifact is then judged live, at its canary)."""
    if metrics is None:
        return []
    found = []
    evaluation = spec.evaluation
    if evaluation.min_recall is not None and metrics.recall is not None and metrics.recall < evaluation.min_recall:
        found.append(f"recall@{metrics.k or evaluation.k} {metrics.recall:.3f} < minRecall {evaluation.min_recall}")
    limit = evaluation.max_p99_latency_ms
    if limit is not None and metrics.p99_latency_ms is not None and metrics.p99_latency_ms > limit:
        found.append(f"p99 {metrics.p99_latency_ms:.3f} ms > maxP99LatencyMs {limit}")
    return found
