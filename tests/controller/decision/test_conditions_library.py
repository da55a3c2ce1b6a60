"""The conditions library: metav1.Condition shape, stable transition times, a fixed order."""

from __future__ import annotations

from faiss_operator.controller.decision import conditions

from tests.controller.builders import at


def test_a_new_condition_starts_now_and_records_the_generation() -> None:
    (ready,) = conditions.set_condition(
        [], type_="Ready", status="True", reason="Serving", message="m", now=at(0), generation=3
    )
    assert (ready.type, ready.status, ready.reason, ready.message, ready.last_transition_time, ready.observed_generation) == (
        "Ready", "True", "Serving", "m", at(0), 3,
    )  # fmt: skip


def test_the_transition_time_stays_while_the_status_stays() -> None:
    first = conditions.set_condition([], type_="Ready", status="True", reason="A", message="a", now=at(0), generation=1)
    same = conditions.set_condition(
        first, type_="Ready", status="True", reason="B", message="b", now=at(10), generation=2
    )
    assert same[0].last_transition_time == at(0) and same[0].reason == "B" and same[0].observed_generation == 2
    flipped = conditions.set_condition(
        same, type_="Ready", status="False", reason="C", message="c", now=at(20), generation=2
    )
    assert flipped[0].last_transition_time == at(20)


def test_conditions_keep_a_fixed_order_and_foreign_ones_go_last() -> None:
    found = conditions.set_condition(
        [], type_="Stalled", status="False", reason="r", message="", now=at(0), generation=1
    )
    found = conditions.set_condition(
        found, type_="Custom", status="True", reason="r", message="", now=at(0), generation=1
    )
    found = conditions.set_condition(
        found, type_="Ready", status="True", reason="r", message="", now=at(0), generation=1
    )
    assert [c.type for c in found] == ["Ready", "Stalled", "Custom"]
