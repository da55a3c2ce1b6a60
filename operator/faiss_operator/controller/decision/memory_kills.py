"""Containers killed for memory, and what to tell the user about them.

A container over its memory limit is killed by the kernel; the kubelet reports its terminated
state with reason OOMKilled and exit code 137 (128 + SIGKILL). A build killed so ends its revision
with reason BuildOOMKilled: the message names the build's memory limit and the input the build
measured before it was killed (its termination log holds that measurement while it builds,
builder/command.py). A serving pod killed so shows in Degraded with reason ServingOOMKilled.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from faiss_operator.controller.decision import observed

REASON_OOM_KILLED = "OOMKilled"
EXIT_CODE_KILLED = 137
MIB = 1024 * 1024


def killed_for_memory(terminated: observed.Terminated | None, *, by_exit_code: bool = True) -> bool:
    """A terminated container state that says the kernel killed it for memory. With
    `by_exit_code`, exit code 137 alone counts too (a runtime that does not name the reason still
    reports SIGKILL); the caller leaves it off where another SIGKILL is likely (a serving pod
    killed after a failed liveness probe, a build Job past its deadline)."""
    if terminated is None:
        return False
    if terminated.reason == REASON_OOM_KILLED:
        return True
    return by_exit_code and terminated.exit_code == EXIT_CODE_KILLED


def measured_input(termination_message: str | None) -> Mapping[str, Any] | None:
    """The build's measurement of its input from its termination log, None when it had none yet."""
    if not termination_message:
        return None
    try:
        document = json.loads(termination_message)
    except json.JSONDecodeError:
        return None
    if not isinstance(document, dict) or not isinstance(document.get("input_bytes"), int):
        return None
    return document


def build_message(terminated: observed.Terminated, *, limit: str | None) -> str:
    """Why the build ended: the kill, the limit it ran under, and its measured input."""
    reason = terminated.reason or "killed"
    head = f"the build container was killed for memory ({reason}, exit code {terminated.exit_code})"
    head += f" at its memory limit {limit}" if limit is not None else " with no memory limit set (the node ran out)"
    measured = measured_input(terminated.message)
    if measured is None:
        body = "before it had measured its input"
    else:
        body = (
            f"its input: {measured.get('vectors')} vectors x {measured.get('dimension')} dimensions = "
            f"{measured['input_bytes'] / MIB:.1f} MiB as float32"
        )
        peak = measured.get("peak_anon_bytes")
        if isinstance(peak, int) and isinstance(measured.get("build_phase"), str):
            # Written by the build at each progress line (builder/command.py); absent from older builders.
            body += (
                f", killed in phase {measured['build_phase']} at {measured.get('percent')}% holding "
                f"{peak / MIB:.0f} MiB of anonymous memory at its peak"
            )
    return f"{head}, {body}; raise spec.build.resources.limits.memory, or choose an index type that needs less memory"


def serving_kills(pods: Sequence[observed.ObservedPod]) -> list[str]:
    """One line per serving pod that is not ready and whose container was killed for memory (its
    current or its last terminated state says OOMKilled): the pod name and its restarts. A pod
    that came back and is ready again is not listed: it serves."""
    return sorted(
        f"pod {pod.name} was OOMKilled (restarts: {pod.restarts})"
        for pod in pods
        if not pod.ready and any(killed_for_memory(t, by_exit_code=False) for t in pod.terminations)
    )


def serving_message(kills: Sequence[str], *, limit: object) -> str:
    """Degraded's message for serving pods killed for memory."""
    head = "; ".join(kills)
    where = f"its memory limit {limit}" if limit is not None else "no memory limit (the node ran out)"
    return f"{head}; the server ran out of memory under {where}: raise spec.serving.resources.limits.memory"
