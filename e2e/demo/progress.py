"""One line of progress per step, with the time since the demo started, and each phase timed."""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from collections.abc import Iterator


class PhaseFailed(RuntimeError):
    """A phase of the demo failed; `phase` names it, the message says why."""

    def __init__(self, phase: str, message: str) -> None:
        super().__init__(message)
        self.phase = phase


@dataclasses.dataclass
class Progress:
    started: float = dataclasses.field(default_factory=time.monotonic)
    # Seconds each finished phase took, in order.
    durations: dict[str, float] = dataclasses.field(default_factory=dict)
    current: str = "start"

    def say(self, message: str) -> None:
        print(f"[demo {time.monotonic() - self.started:6.1f}s] {message}", flush=True)

    def show(self, text: str) -> None:
        """Lines as a command printed them, indented under the progress lines."""
        for line in text.rstrip("\n").splitlines():
            print(f"    {line}", flush=True)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the phase `name`; any exception in it becomes PhaseFailed(name, ...)."""
        self.current = name
        self.say(f"== {name}")
        begun = time.monotonic()
        try:
            yield
        except PhaseFailed:
            raise
        except Exception as error:  # noqa: BLE001 - every failure is reported with its phase
            raise PhaseFailed(name, f"{type(error).__name__}: {error}") from error
        self.durations[name] = time.monotonic() - begun
        self.say(f"   {name}: done in {self.durations[name]:.1f}s")


def fail(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
