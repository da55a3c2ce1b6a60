"""Reading the build Job's result: the report in the termination message, or why it failed."""

from __future__ import annotations

import datetime

import json
from typing import Any

import pytest
from faiss_operator.api import status as api_status
from faiss_operator.contract import build_report
from faiss_operator.controller.decision import lifecycle, observed
from faiss_operator.controller.runtime import child_views


def test_a_full_report_becomes_metrics() -> None:
    parsed = build_report.parse_report(
        json.dumps({"vectors": 10, "recall": 0.99, "k": 5, "p50_ms": 0.1, "p99_ms": 0.3, "memory_bytes": 9, "build_seconds": 1.5,
                    "config": {"m": 16}, "artifact": "/mnt/x", "unknown_future_field": 1})
    )  # fmt: skip
    assert lifecycle.revision_metrics(parsed, k=10) == api_status.RevisionMetrics(
        vectors=10, k=5, recall=0.99, p50_latency_ms=0.1, p99_latency_ms=0.3, memory_bytes=9, build_seconds=1.5
    )
    assert (parsed.config, parsed.artifact) == ({"m": 16}, "/mnt/x")


def test_other_spellings_of_the_builder_are_accepted() -> None:
    parsed = build_report.parse_report(
        json.dumps({"total_vectors": 3, "recall_at_k": 0.9, "p99_latency_ms": 2.0, "effective_config": {}})
    )
    assert (parsed.vectors, parsed.recall, parsed.p99_ms, parsed.config) == (3, 0.9, 2.0, {})


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (None, "left no termination message"),
        ("   ", "left no termination message"),
        ("Traceback (most recent call last):", "not JSON"),
        ("[1, 2]", "must be a JSON object, got list"),
        (json.dumps({"vectors": 3}), "recall: Field required; p99_ms: Field required"),
        (
            json.dumps({"vectors": -1, "recall": 0.9, "p99_ms": 1}),
            "vectors: Input should be greater than or equal to 0",
        ),
        (json.dumps({"vectors": 1, "recall": 1.5, "p99_ms": 1}), "recall: Input should be less than or equal to 1"),
        ("{" + " " * 5000 + "}", "at most 4096 fit a termination message"),
    ],
)
def test_a_bad_report_says_what_is_wrong(message: str | None, error: str) -> None:
    with pytest.raises(build_report.ReportError, match=error.replace("(", r"\(").replace(")", r"\)")):
        build_report.parse_report(message)


def job(status: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "alerts-build-r"}, "status": status}


def pod(phase: str, terminated: dict[str, Any] | None) -> dict[str, Any]:
    state = {"terminated": terminated} if terminated is not None else {"running": {}}
    return {"status": {"phase": phase, "containerStatuses": [{"name": "build", "state": state}]}}


def test_a_job_without_a_final_condition_is_running() -> None:
    assert child_views.job_outcome(job({"active": 1}), [pod("Running", None)]) == observed.JobRunning()


def test_a_complete_job_hands_over_its_pods_termination_message() -> None:
    outcome = child_views.job_outcome(
        job({"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}),
        [pod("Failed", {"exitCode": 1, "message": "first try"}), pod("Succeeded", {"exitCode": 0, "message": "{}"})],
    )
    assert outcome == observed.JobSucceeded(termination_message="{}")


def test_a_complete_job_whose_pod_is_not_seen_is_told_apart_with_its_completion_time() -> None:
    complete = {"completionTime": "2026-11-25T15:00:00Z", "conditions": [{"type": "Complete", "status": "True"}]}
    outcome = child_views.job_outcome(job(complete), [pod("Running", None)])
    assert outcome == observed.JobCompletedPodUnseen(
        completed_at=datetime.datetime(2026, 11, 25, 15, 0, tzinfo=datetime.timezone.utc)
    )


def test_a_complete_job_without_completion_time_counts_from_its_creation() -> None:
    created = {"name": "alerts-build-r", "creationTimestamp": "2026-11-25T14:00:00Z"}
    outcome = child_views.job_outcome({"metadata": created, "status": {"succeeded": 1}}, [])
    assert outcome == observed.JobCompletedPodUnseen(
        completed_at=datetime.datetime(2026, 11, 25, 14, 0, tzinfo=datetime.timezone.utc)
    )


def test_a_succeeded_pod_without_a_message_hands_over_none() -> None:
    outcome = child_views.job_outcome(
        job({"succeeded": 1}), [{"status": {"phase": "Succeeded", "containerStatuses": []}}]
    )
    assert outcome == observed.JobSucceeded(termination_message=None)


def test_a_failed_job_explains_itself_with_its_last_pod() -> None:
    outcome = child_views.job_outcome(
        job(
            {
                "conditions": [
                    {
                        "type": "Failed",
                        "status": "True",
                        "reason": "DeadlineExceeded",
                        "message": "Job was active longer than specified deadline",
                    }
                ]
            }
        ),
        [pod("Failed", {"exitCode": 137, "reason": "OOMKilled", "message": ""})],
    )
    assert outcome == observed.JobFailed(
        reason="DeadlineExceeded",
        message="DeadlineExceeded: Job was active longer than specified deadline; last build pod exited with code 137 (OOMKilled)",
        terminated=observed.Terminated(exit_code=137, reason="OOMKilled", message=""),
    )


def test_a_false_condition_is_not_an_outcome() -> None:
    outcome = child_views.job_outcome(job({"conditions": [{"type": "Failed", "status": "False"}]}), [])
    assert outcome == observed.JobRunning()
