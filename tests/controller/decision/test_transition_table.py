"""The revision transition table is enforced where states are written, not only by a test.

`Draft.move` raises `IllegalTransition` for a move `state.TRANSITIONS` does not list (a bug in
the controller: tests fail loudly, the reconciler refuses the plan, see
tests/controller/runtime/test_reconciler.py). A status that contradicts itself is repaired
towards the table instead: a Canary outside a canary rollout goes back to Built.
"""

from __future__ import annotations

import itertools
from typing import get_args

import pytest
from faiss_operator.api import status as api_status
from faiss_operator.controller.decision import modes, state

from tests.controller import scenarios
from tests.controller.builders import Summary, at, relabel_summary, report, revision_of, spec, summarize, with_config

R1 = revision_of(spec())
R2 = revision_of(with_config(spec(), m=32))
LABELS = {R1: "R1", R2: "R2"}
STATES: tuple[api_status.RevisionState, ...] = get_args(api_status.RevisionState)


def _draft(entry_state: api_status.RevisionState) -> state.Draft:
    entry = api_status.RevisionStatus(
        name="r", index_type="HNSW", artifact="pvc://a/r", artifact_key="k", state=entry_state, created_at=at(0)
    )
    return state.Draft(revisions=[entry], current=None, candidate=None, mode=None, scale_downs=[])


def test_every_state_has_a_row() -> None:
    assert set(state.TRANSITIONS) == set(STATES)


@pytest.mark.parametrize("before,after", list(itertools.product(STATES, STATES)), ids=lambda s: str(s))
def test_a_move_is_made_exactly_when_the_table_lists_it(
    before: api_status.RevisionState, after: api_status.RevisionState
) -> None:
    draft = _draft(before)
    if before == after or after in state.TRANSITIONS[before]:
        draft.move("r", after, reason="Why", message="because")
        assert (draft.revisions[0].state, draft.revisions[0].reason) == (after, "Why")
        return
    with pytest.raises(state.IllegalTransition, match=f"revision r: {before} -> {after} is not in state.TRANSITIONS"):
        draft.move("r", after, reason="Why", message="because")
    assert (draft.revisions[0].state, draft.revisions[0].reason) == (before, None)  # untouched


def test_a_canary_whose_rollout_the_status_lost_goes_back_to_built_and_rolls_out_again() -> None:
    cluster = scenarios.canary_analysed()
    cluster.status = cluster.status.model_copy(update={"candidate_revision": cluster.status.current_revision})
    plan = cluster.reconcile(at(60))
    assert relabel_summary(summarize(plan), LABELS) == Summary(
        # step 0 again: its one replica is already there and ready, so its analysis starts anew
        actions=(("Analyze", "R2", 0),),
        phase="Progressing",
        current="R1",
        candidate="R2",
        rollout=("Canary", 0, 25, False, False),
        revisions=(("R2", "Canary"), ("R1", "Active")),
    )
    repaired = [e.message.replace(R1, "R1").replace(R2, "R2") for e in plan.events if e.reason == "StatusRepaired"]
    assert repaired == [
        "status.candidateRevision R1 is not a pending revision; ignored",
        "revision R2 is Canary outside a canary rollout; back to Built",
    ]


def test_a_decision_making_a_revision_move_the_table_does_not_list_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(state.TRANSITIONS, "Built", state.TRANSITIONS["Built"] - {"Canary"})
    cluster = scenarios.candidate_building()
    cluster.finish_job(R2, message=report())
    with pytest.raises(state.IllegalTransition, match=f"revision {R2}: Built -> Canary is not in state.TRANSITIONS"):
        cluster.reconcile(at(40))


def test_a_decision_making_a_mode_change_the_table_does_not_list_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(modes.MODE_TRANSITIONS, None, frozenset({modes.Deploying, modes.RollingBack}))
    cluster = scenarios.candidate_building()
    cluster.finish_job(R2, message=report())
    with pytest.raises(state.IllegalTransition, match="rollout: None -> Stepping is not in modes.MODE_TRANSITIONS"):
        cluster.reconcile(at(40))
