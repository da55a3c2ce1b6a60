"""The status write: one merge patch that turns the stored status into the decided one."""

from __future__ import annotations

from typing import Any

import pytest
from faiss_operator.controller.decision import patches

from tests.controller import scenarios
from tests.controller.builders import at, passing


@pytest.mark.parametrize(
    ("before", "after", "want"),
    [
        ({}, {}, {}),
        ({"a": 1}, {"a": 1}, {}),
        ({"a": 1}, {"a": 2}, {"a": 2}),
        ({"a": 1, "b": 2}, {"a": 1}, {"b": None}),
        ({"r": {"step": 0, "weight": 25}}, {"r": {"step": 1, "weight": 25}}, {"r": {"step": 1}}),
        ({"r": {"step": 0}}, {}, {"r": None}),
        ({"l": [1, 2]}, {"l": [1]}, {"l": [1]}),
        ({"a": {"b": 1}}, {"a": 5}, {"a": 5}),
    ],
)
def test_merge_patch(before: dict[str, Any], after: dict[str, Any], want: dict[str, Any]) -> None:
    patch = patches.merge_patch(before, after)
    assert patch == want
    assert patches.apply_merge_patch(before, patch) == after


def test_every_status_write_of_a_migration_patches_the_stored_status_into_the_decided_one() -> None:
    cluster = scenarios.canary_analysed()
    stored = cluster.status.to_wire()
    second = cluster.status.candidate_revision
    assert second is not None
    for seconds in (110, 111, 115, 180, 181, 260):
        cluster.ready_all()
        plan = cluster.reconcile(at(seconds), (passing(second, 1, at(112)),) if seconds == 115 else ())
        if plan.status_changed:
            assert patches.apply_merge_patch(stored, plan.status_patch) == plan.status.to_wire()
            stored = plan.status.to_wire()
        else:
            assert plan.status_patch == {}
    assert "candidateRevision" not in stored and "rollout" not in stored
