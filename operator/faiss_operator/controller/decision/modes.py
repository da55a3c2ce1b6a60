"""The rollout of a candidate as a closed state machine: six modes and the moves between them.

status.rollout keeps the flat wire form users, dashboards and older operators know (mode
Deploy/Canary/Rollback beside the flags paused, pauseReason, promoting and the step's clock).
`read` turns it into one of the modes below once per pass, `to_wire` writes it back flat, and
`Draft.enter` (state.py) is the one writer of the mode, checking every change of mode against
MODE_TRANSITIONS the way `Draft.move` checks revision states against TRANSITIONS. The names
follow Argo Rollouts' canary vocabulary and the Progressing reasons users already read.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import TypeAlias

from faiss_operator.api import status as api_status

PauseReason = api_status.PauseReason


@dataclasses.dataclass(frozen=True)
class Progress:
    """The clock of the step under way: progressDeadlineSeconds counts from its start, or from
    `unready_since` when the step, once whole (`ready_at`), lost a ready replica."""

    started_at: datetime.datetime
    ready_at: datetime.datetime | None = None
    unready_since: datetime.datetime | None = None


@dataclasses.dataclass(frozen=True)
class Analysis:
    """The live analysis of the step under way: passed, failures so far, the last one judged."""

    passed: bool = False
    failures: int = 0
    last_at: datetime.datetime | None = None


@dataclasses.dataclass(frozen=True)
class Deploying:
    """A first revision on all replicas at once (nothing serves yet)."""

    progress: Progress
    analysis: Analysis = Analysis()


@dataclasses.dataclass(frozen=True)
class Stepping:
    """Canary step `step` (from 0) of weight `weight`: waiting for its replicas, its analysis, its pause."""

    step: int
    weight: int
    progress: Progress
    analysis: Analysis = Analysis()


@dataclasses.dataclass(frozen=True)
class AwaitingPromotion:
    """A step without pauseSeconds passed its analysis: faiss.dev/promote opens the next one."""

    at: Stepping


@dataclasses.dataclass(frozen=True)
class Promoting:
    """After the last step (or faiss.dev/promote): the candidate goes to all replicas, then takes over."""

    at: Stepping


@dataclasses.dataclass(frozen=True)
class RollingBack:
    """faiss.dev/rollback: the target (a revision that served) goes to all replicas, then takes over."""

    progress: Progress


Resumable: TypeAlias = Deploying | Stepping | Promoting | RollingBack


@dataclasses.dataclass(frozen=True)
class Paused:
    """Stopped where `of` was, for `reason` (SpecPaused or Failure; None in a status written
    before reasons were typed); what `of` resumes with when the pause ends."""

    reason: PauseReason | None
    message: str | None
    of: Resumable


Mode: TypeAlias = Deploying | Stepping | AwaitingPromotion | Promoting | RollingBack | Paused
Kind: TypeAlias = type[Deploying | Stepping | AwaitingPromotion | Promoting | RollingBack | Paused] | None


class IllegalTransition(Exception):
    """A change the transition tables do not list (a revision's state, state.TRANSITIONS, or the
    rollout's mode, MODE_TRANSITIONS): a bug in the controller, never a bad input."""


# Every change of mode the controller makes (docs/controller.md shows it). None is "no rollout":
# before the gates start one, and after promotion, an ending (abort, rollback, failure, a newer
# spec) or a status repair. Staying in a mode (a step's clock, the next step) is no change.
MODE_TRANSITIONS: dict[Kind, frozenset[Kind]] = {
    # The gates start Deploying (nothing serves) or Stepping; faiss.dev/rollback starts RollingBack.
    None: frozenset({Deploying, Stepping, RollingBack}),
    Deploying: frozenset({Paused, None}),
    Stepping: frozenset({AwaitingPromotion, Promoting, Paused, None}),
    AwaitingPromotion: frozenset({Stepping, Promoting, None}),
    Promoting: frozenset({Paused, None}),
    RollingBack: frozenset({Paused, None}),
    # A pause ends back in what it stopped, or in Promoting (faiss.dev/promote), or the rollout ends.
    Paused: frozenset({Deploying, Stepping, Promoting, RollingBack, None}),
}


def kind(mode: Mode | None) -> Kind:
    return None if mode is None else type(mode)


def name(mode: Mode | None) -> str:
    return "None" if mode is None else type(mode).__name__


def check(before: Mode | None, after: Mode | None) -> None:
    """Raise IllegalTransition when going from `before` to `after` is not in MODE_TRANSITIONS."""
    if kind(before) is kind(after) or kind(after) in MODE_TRANSITIONS[kind(before)]:
        return
    raise IllegalTransition(f"rollout: {name(before)} -> {name(after)} is not in modes.MODE_TRANSITIONS")


def resumed(mode: Resumable, now: datetime.datetime) -> Resumable:
    """`mode` going on after a pause: its step's clock starts again at `now`."""
    if isinstance(mode, Promoting):
        return Promoting(dataclasses.replace(mode.at, progress=dataclasses.replace(mode.at.progress, started_at=now)))
    return dataclasses.replace(mode, progress=dataclasses.replace(mode.progress, started_at=now))


def is_rolling_back(mode: Mode | None) -> bool:
    """The rollout brings back a revision that served (faiss.dev/rollback), paused or not."""
    return isinstance(mode, RollingBack) or (isinstance(mode, Paused) and isinstance(mode.of, RollingBack))


def is_canary(mode: Mode | None) -> bool:
    """The rollout moves traffic by steps (the wire's mode Canary), paused or not."""
    if isinstance(mode, Paused):
        return is_canary(mode.of)
    return isinstance(mode, (Stepping, AwaitingPromotion, Promoting))


# --- the flat wire form -------------------------------------------------------------------------


def read(wire: api_status.RolloutStatus | None) -> Mode | None:
    """The mode status.rollout stands for; every wire form reads as one (a flag that does not
    apply to its mode, from a hand-edited status, is dropped when written back)."""
    if wire is None:
        return None
    progress = Progress(wire.step_started_at, wire.step_ready_at, wire.unready_since)
    analysis = Analysis(wire.analysis_passed, wire.analysis_failures, wire.last_analysis_at)
    inner: Resumable
    if wire.mode == "Deploy":
        inner = Deploying(progress, analysis)
    elif wire.mode == "Rollback":
        inner = RollingBack(progress)
    else:
        stepping = Stepping(wire.step, wire.weight, progress, analysis)
        if wire.paused and wire.pause_reason == "AwaitingPromotion":
            return AwaitingPromotion(stepping)
        inner = Promoting(stepping) if wire.promoting else stepping
    if wire.paused:
        return Paused(wire.pause_reason, wire.pause_message, inner)
    return inner


def to_wire(mode: Mode | None) -> api_status.RolloutStatus | None:
    """status.rollout for `mode` (actualWeight is filled in by status_view from ready replicas)."""
    match mode:
        case None:
            return None
        case Paused(reason=reason, message=message, of=of):
            flat = to_wire(of)
            assert flat is not None
            return flat.model_copy(update={"paused": True, "pause_reason": reason, "pause_message": message})
        case AwaitingPromotion(at=at):
            flat = to_wire(at)
            assert flat is not None
            return flat.model_copy(update={"paused": True, "pause_reason": "AwaitingPromotion"})
        case Promoting(at=at):
            flat = to_wire(at)
            assert flat is not None
            return flat.model_copy(update={"promoting": True})
        case Deploying(progress=progress, analysis=analysis):
            return _flat("Deploy", 0, 100, progress, analysis)
        case Stepping(step=step, weight=weight, progress=progress, analysis=analysis):
            return _flat("Canary", step, weight, progress, analysis)
        case RollingBack(progress=progress):
            return _flat("Rollback", 0, 100, progress, Analysis())


def _flat(
    mode: api_status.RolloutMode, step: int, weight: int, progress: Progress, analysis: Analysis
) -> api_status.RolloutStatus:
    return api_status.RolloutStatus(
        mode=mode,
        step=step,
        weight=weight,
        step_started_at=progress.started_at,
        step_ready_at=progress.ready_at,
        unready_since=progress.unready_since,
        analysis_passed=analysis.passed,
        analysis_failures=analysis.failures,
        last_analysis_at=analysis.last_at,
    )
