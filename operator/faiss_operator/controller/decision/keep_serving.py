"""The last ready pods stay: the operator's own decisions never take away the only pods that serve.

A revision can leave the rollout while its pods are the only ready ones behind the Service: a
first revision superseded by a spec change before it was promoted, or a canary superseded while
every pod of the stable is unready. Deleting its Deployment then would leave the Service with no
endpoint at all, for as long as the replacement takes to build and start. So such a revision keeps
its Deployment exactly as it is (it is *held*) until a revision that should serve has a ready pod;
the next pass after that deletes it as usual.

Only the operator's own decisions are held back this way. When an admin asked (faiss.dev/abort,
faiss.dev/rollback) or live analysis failed, the pods are wrong rather than late, and they go at
once even if nothing else is ready.
"""

from __future__ import annotations

from collections.abc import Mapping

from faiss_operator.controller.decision import state

# Why a revision left when its pods must go at once, whatever else is ready.
DELIBERATE = frozenset({state.REASON_ABORTED, state.REASON_ROLLBACK_REQUESTED, state.REASON_ANALYSIS_FAILED})


def held(inputs: state.Inputs, draft: state.Draft, wanted: Mapping[str, int]) -> frozenset[state.Revision]:
    """The revisions outside `wanted` (revision -> replicas) whose Deployment stays as it is,
    because its pods are the only ready ones and no admin or analysis asked them away."""
    children = inputs.children
    if any(children.ready_replicas(revision) > 0 for revision in wanted):
        return frozenset()
    kept: set[state.Revision] = set()
    for deployment in children.deployments:
        revision = deployment.revision
        if revision is None or revision in wanted or children.ready_replicas(revision) == 0:
            continue
        entry = draft.entry(revision)
        if entry is not None and entry.reason in DELIBERATE:
            continue
        kept.add(state.Revision(revision))
    return frozenset(kept)


def message(revisions: frozenset[state.Revision]) -> str:
    names = ", ".join(sorted(revisions))
    return f"revision {names} keeps its ready pods behind the Service until a revision that should serve has one"
