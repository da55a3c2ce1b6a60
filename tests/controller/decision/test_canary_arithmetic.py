"""Rollout arithmetic: replicas per step and the weight that ready replicas really give."""

from __future__ import annotations

import pytest
from faiss_operator.api import spec as api_spec
from faiss_operator.controller.decision import canary


@pytest.mark.parametrize(
    ("total", "weight", "want"),
    [
        (4, 25, 1),
        (4, 50, 2),
        (3, 25, 1),  # ceil(0.75)
        (3, 34, 2),  # ceil(1.02)
        (3, 33, 1),  # ceil(0.99)
        (10, 1, 1),  # any weight above zero gets a replica
        (10, 100, 10),
        (1, 10, 1),
        (7, 0, 0),
        (0, 50, 0),
    ],
)
def test_candidate_replicas_is_the_ceiling_of_total_times_weight(total: int, weight: int, want: int) -> None:
    assert canary.candidate_replicas(total, weight) == want


@pytest.mark.parametrize(("total", "weight"), [(-1, 10), (3, -1), (3, 101)])
def test_candidate_replicas_refuses_impossible_inputs(total: int, weight: int) -> None:
    with pytest.raises(ValueError, match="candidate_replicas"):
        canary.candidate_replicas(total, weight)


@pytest.mark.parametrize(
    ("candidate", "stable", "want"),
    [(1, 4, 20), (2, 4, 33), (4, 4, 50), (0, 4, 0), (0, 0, 0), (3, 0, 100)],
)
def test_actual_weight_counts_ready_replicas_only(candidate: int, stable: int, want: int) -> None:
    assert canary.actual_weight(candidate_ready=candidate, stable_ready=stable) == want


def test_no_steps_means_one_full_step() -> None:
    assert canary.steps(api_spec.RolloutSpec()) == [canary.Step(weight=100, pause_seconds=0)]
    rollout = api_spec.RolloutSpec.model_validate({"steps": [{"weight": 10}, {"weight": 60, "pauseSeconds": 5}]})
    assert canary.steps(rollout) == [canary.Step(10, None), canary.Step(60, 5)]
