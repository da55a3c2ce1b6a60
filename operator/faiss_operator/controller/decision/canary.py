"""Rollout arithmetic, all of it: the steps, how many replicas a step gives the candidate, and the
weight it really has.

Traffic splits by ready replicas (one Service selects every revision's pods), so a step of
weight w over a Deployment of `total` replicas runs ceil(total*w/100) candidate replicas beside
the stable's full `total`; only ready replicas count toward the weight a user sees.
"""

from __future__ import annotations

import dataclasses

from faiss_operator.api import spec as api_spec


@dataclasses.dataclass(frozen=True)
class Step:
    weight: int
    pause_seconds: int | None  # None: wait for faiss.dev/promote


# Without steps, the candidate goes straight to all replicas, is analysed there, then promoted.
FULL_STEP = Step(weight=100, pause_seconds=0)


def steps(rollout: api_spec.RolloutSpec) -> list[Step]:
    if not rollout.steps:
        return [FULL_STEP]
    return [Step(weight=s.weight, pause_seconds=s.pause_seconds) for s in rollout.steps]


def step_at(rollout: api_spec.RolloutSpec, position: int) -> Step:
    """The step at `position`; past the last one (the spec lost steps meanwhile), the last."""
    found = steps(rollout)
    return found[max(0, min(position, len(found) - 1))]


def has_step(rollout: api_spec.RolloutSpec, position: int) -> bool:
    return 0 <= position < len(steps(rollout))


def step_replicas(rollout: api_spec.RolloutSpec, *, total: int, position: int) -> int:
    """The candidate's replicas at canary step `position` of a Deployment of `total` replicas."""
    return candidate_replicas(total, step_at(rollout, position).weight)


def candidate_replicas(total: int, weight: int) -> int:
    """ceil(total*weight/100), within 0..total. Raises ValueError for a negative total or a weight
    outside 0..100, which the spec's models never let through."""
    if total < 0 or not 0 <= weight <= 100:
        raise ValueError(f"candidate_replicas: need total >= 0 and weight in 0..100, got {total}, {weight}")
    return -(-total * weight // 100)


def actual_weight(*, candidate_ready: int, stable_ready: int) -> int:
    """The percentage of ready serving replicas that run the candidate, rounded down."""
    ready = candidate_ready + stable_ready
    return 0 if ready == 0 else candidate_ready * 100 // ready
