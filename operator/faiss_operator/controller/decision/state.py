"""The inputs of one decision and the draft it fills: shared by the steps of `decide`.

The draft is mutable only inside one `decide` call; the reasons recorded on revisions are
named here once, for every step and for the tests.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Sequence

from faiss_operator.api import resource as api_resource
from faiss_operator.api import spec as api_spec
from faiss_operator.api import status as api_status
from faiss_operator.controller.decision import actions as plan_actions
from faiss_operator.controller.decision import analysis, modes, revisions
from faiss_operator.controller.decision import observed
from faiss_operator.controller.decision import settings as operator_settings

# Reasons recorded on revisions (status.revisions[].reason) and used in Events.
REASON_SUPERSEDED = "Superseded"
REASON_REVERTED = "Reverted"
REASON_REUSED = "ArtifactReused"
REASON_BUILD_FAILED = "BuildFailed"
REASON_BUILD_OOM_KILLED = "BuildOOMKilled"
REASON_BAD_REPORT = "BadReport"
REASON_DEGENERATE_DATA = "DegenerateData"
REASON_BAD_ARTIFACT = "BadArtifact"
REASON_BUILD_POD_NOT_FOUND = "BuildPodNotFound"
REASON_GATES_NOT_MET = "GatesNotMet"
REASON_ANALYSIS_FAILED = "AnalysisFailed"
REASON_PROGRESS_DEADLINE = "ProgressDeadlineExceeded"
REASON_ABORTED = "Aborted"
REASON_ROLLBACK_REQUESTED = "RollbackRequested"
REASON_RETRIED = "Retried"
REASON_ANNOTATION_IGNORED = "AnnotationIgnored"
REASON_STATUS_REPAIRED = "StatusRepaired"
REASON_PRUNED = "RevisionPruned"

REASON_ROLLBACK_REFUSED = "RollbackRefused"
REASON_PROMOTED_DEGRADED = "PromotedDegraded"
REASON_AWAITING_CLEANUP = "AwaitingCleanup"

# Why a rollout waits (status.rollout.pauseReason) and what each pause tells the user.
PAUSE_AWAITING_PROMOTION: api_status.PauseReason = "AwaitingPromotion"
PAUSE_SPEC: api_status.PauseReason = "SpecPaused"
PAUSE_FAILURE: api_status.PauseReason = "Failure"
PAUSE_MESSAGES: dict[api_status.PauseReason, str] = {
    PAUSE_AWAITING_PROMOTION: "step without pauseSeconds: annotate faiss.dev/promote=true to continue",
    PAUSE_SPEC: "spec.paused is true",
}

Revision = api_status.Revision
RevisionState = api_status.RevisionState

# Every change of a revision's state the controller makes, in one table (docs/faissindex.md shows
# it): from a state to the states it may go to. `Draft.move` is the only writer of `state`, and the
# random-walk test checks every observed change against this table.
TRANSITIONS: dict[RevisionState, frozenset[RevisionState]] = {
    # A new revision starts as Building (or Built when it reuses a built artifact).
    "Building": frozenset({"Built", "Failed", "Superseded", "RolledBack"}),
    "Built": frozenset({"Canary", "Active", "Failed", "RolledBack", "Superseded", "Retired"}),
    # Canary -> Built: a status repair (draft_from), never a step of a rollout.
    "Canary": frozenset({"Active", "RolledBack", "Failed", "Superseded", "Built"}),
    "Active": frozenset({"Retired", "RolledBack"}),
    # Retired: it served and was replaced; a rollback may send it back (Built, then Active).
    "Retired": frozenset({"Built"}),
    # Failed, RolledBack and Superseded wait for faiss.dev/retry or for the spec to return to them.
    "Failed": frozenset({"Built", "Building"}),
    "RolledBack": frozenset({"Built", "Building"}),
    "Superseded": frozenset({"Built", "Building"}),
}


IllegalTransition = modes.IllegalTransition


@dataclasses.dataclass(frozen=True)
class Inputs:
    resource: api_resource.Resource
    spec: api_spec.FaissIndexSpec
    desired: revisions.DesiredRevision
    children: observed.Children
    measurements: Sequence[analysis.Measurement]
    now: datetime.datetime
    settings: operator_settings.OperatorSettings

    @property
    def total(self) -> int:
        return self.spec.serving.replicas

    def after(self, seconds: float) -> datetime.datetime:
        return self.now + datetime.timedelta(seconds=seconds)

    def past(self, deadline: datetime.datetime, draft: Draft) -> bool:
        """True once `deadline` has come; before that, ask to be woken at it and return False.

        The one place of "past the deadline fail, otherwise wake at it"."""
        if self.now >= deadline:
            return True
        draft.wake_at.append(deadline)
        return False


@dataclasses.dataclass
class Draft:
    """The status being decided, and what to do; mutable only inside one `decide` call."""

    revisions: list[api_status.RevisionStatus]
    current: Revision | None
    candidate: Revision | None
    mode: modes.Mode | None  # the candidate's rollout (modes.py); None when none is under way
    scale_downs: list[api_status.ScaleDown]
    handled: dict[str, str] = dataclasses.field(default_factory=dict)
    actions: list[plan_actions.Action] = dataclasses.field(default_factory=list)
    events: list[plan_actions.Event] = dataclasses.field(default_factory=list)
    wake_at: list[datetime.datetime] = dataclasses.field(default_factory=list)
    pruned: list[Revision] = dataclasses.field(default_factory=list)
    # Live Deployments the status does not account for and that cannot be adopted: never touched.
    untouchable: set[str] = dataclasses.field(default_factory=set)

    def entry(self, name: str | None) -> api_status.RevisionStatus | None:
        return next((e for e in self.revisions if e.name == name), None)

    def update(self, name: str, **changes: object) -> api_status.RevisionStatus:
        """Change fields of a revision other than its state (see `move`); a missing one is ignored."""
        for position, entry in enumerate(self.revisions):
            if entry.name == name:
                self.revisions[position] = entry.model_copy(update=changes)
                return self.revisions[position]
        return _missing(name)

    def move(
        self, name: str, to: RevisionState, *, reason: str | None, message: str | None, **changes: object
    ) -> None:
        """The one writer of a revision's state (TRANSITIONS lists the moves it makes)."""
        entry = self.entry(name)
        if entry is not None and entry.state != to and to not in TRANSITIONS[entry.state]:
            raise IllegalTransition(f"revision {name}: {entry.state} -> {to} is not in state.TRANSITIONS")
        self.update(name, state=to, reason=reason, message=message, **changes)

    def enter(self, mode: modes.Mode | None) -> None:
        """The one writer of the rollout's mode (modes.MODE_TRANSITIONS lists the changes it makes)."""
        modes.check(self.mode, mode)
        self.mode = mode

    def warn(self, reason: str, message: str) -> None:
        self.events.append(plan_actions.Event("Warning", reason, message))


def draft_from(status: api_status.FaissIndexStatus) -> Draft:
    draft = Draft(
        revisions=list(status.revisions),
        current=status.current_revision,
        candidate=status.candidate_revision,
        mode=modes.read(status.rollout),
        scale_downs=list(status.scale_downs),
        handled=dict(status.handled_annotations),
    )
    # A status that contradicts itself (hand-edited, or written by an older operator) is repaired
    # towards "nothing in flight" rather than trusted: the serving revision is kept when known.
    if draft.current is not None and draft.entry(draft.current) is None:
        draft.warn(
            REASON_STATUS_REPAIRED, f"status.currentRevision {draft.current} is not in status.revisions; ignored"
        )
        draft.current = None
    if draft.candidate is not None and (draft.entry(draft.candidate) is None or draft.candidate == draft.current):
        draft.warn(
            REASON_STATUS_REPAIRED, f"status.candidateRevision {draft.candidate} is not a pending revision; ignored"
        )
        draft.candidate = None
    if draft.candidate is None:
        draft.mode = None
    for entry in list(draft.revisions):
        # A Canary is the candidate of a canary rollout. One the status lost the rollout of is
        # back to Built (its artifact is kept): rolled out again from the first step if the spec
        # still asks for it, otherwise left in history, never shown as rolling out. A Canary
        # candidate under a first deploy or a rollback is Built too, as those rollouts expect.
        if entry.state == "Canary" and (entry.name != draft.candidate or not modes.is_canary(draft.mode)):
            draft.warn(
                REASON_STATUS_REPAIRED, f"revision {entry.name} is Canary outside a canary rollout; back to Built"
            )
            draft.move(entry.name, "Built", reason=REASON_STATUS_REPAIRED, message="its rollout was lost from the status")
    draft.scale_downs = [s for s in draft.scale_downs if draft.entry(s.revision) is not None]
    return draft


def has_artifact(entry: api_status.RevisionStatus) -> bool:
    """A revision's files exist once it was built (or reuses built files): it then has metrics."""
    return entry.metrics is not None


def end_candidate(draft: Draft, *, state: RevisionState, reason: str, message: str) -> None:
    if draft.candidate is not None:
        draft.move(draft.candidate, state, reason=reason, message=message)
    draft.candidate = None
    draft.enter(None)


def _missing(name: str) -> api_status.RevisionStatus:
    # Every caller looks the revision up first; reaching here is a bug in the controller, not a
    # bad input, so it is reported as one.
    raise LookupError(f"revision {name} is not in the draft")
