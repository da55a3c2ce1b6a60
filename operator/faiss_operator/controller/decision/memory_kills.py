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

REASON_OOM_KILLED = "OOMKilled"
EXIT_CODE_KILLED = 137
MIB = 1024 * 1024


def killed_for_memory(terminated: Mapping[str, Any] | None, *, by_exit_code: bool = True) -> bool:
    """A terminated container state that says the kernel killed it for memory. With
    `by_exit_code`, exit code 137 alone counts too (a runtime that does not name the reason still
    reports SIGKILL); the caller leaves it off where another SIGKILL is likely (a serving pod
    killed after a failed liveness probe, a build Job past its deadline)."""
    if terminated is None:
        return False
    if terminated.get("reason") == REASON_OOM_KILLED:
        return True
    return by_exit_code and terminated.get("exitCode") == EXIT_CODE_KILLED


def measured_input(termination_message: object) -> Mapping[str, Any] | None:
    """The build's measurement of its input from its termination log, None when it had none yet."""
    if not isinstance(termination_message, str):
        return None
    try:
        document = json.loads(termination_message)
    except json.JSONDecodeError:
        return None
    if not isinstance(document, dict) or not isinstance(document.get("input_bytes"), int):
        return None
    return document


def build_message(terminated: Mapping[str, Any], *, limit: object) -> str:
    """Why the build ended: the kill, the limit it ran under, and its measured input."""
    reason = terminated.get("reason") or "killed"
    head = f"the build container was killed for memory ({reason}, exit code {terminated.get('exitCode')})"
    head += f" at its memory limit {limit}" if limit is not None else " with no memory limit set (the node ran out)"
    measured = measured_input(terminated.get("message"))
    if measured is None:
        body = "before it had measured its input"
    else:
        body = (
            f"its input: {measured.get('vectors')} vectors x {measured.get('dimension')} dimensions = "
            f"{measured['input_bytes'] / MIB:.1f} MiB as float32"
        )
    return f"{head}, {body}; raise spec.build.resources.limits.memory, or choose an index type that needs less memory"


def serving_kills(pods: Sequence[Mapping[str, Any]], container: str) -> list[str]:
    """One line per serving pod whose `container` is not ready and was killed for memory (its
    current or its last terminated state says OOMKilled): the pod name and its restarts. A pod
    that came back and is ready again is not listed: it serves."""
    lines = []
    for pod in pods:
        for status in (pod.get("status") or {}).get("containerStatuses") or ():
            if status.get("name") != container or status.get("ready"):
                continue
            states = (status.get("state") or {}, status.get("lastState") or {})
            if any(killed_for_memory(state.get("terminated"), by_exit_code=False) for state in states):
                name = (pod.get("metadata") or {}).get("name", "")
                lines.append(f"pod {name} was OOMKilled (restarts: {status.get('restartCount', 0)})")
    return sorted(lines)


def serving_message(kills: Sequence[str], *, limit: object) -> str:
    """Degraded's message for serving pods killed for memory."""
    head = "; ".join(kills)
    where = f"its memory limit {limit}" if limit is not None else "no memory limit (the node ran out)"
    return f"{head}; the server ran out of memory under {where}: raise spec.serving.resources.limits.memory"
