"""Start background programs and stop exactly those, by process id.

A process id alone can be reused after the process dies, so each record also keeps the kernel's
start time of the process; stop() only signals a pid whose start time still matches.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence


@dataclasses.dataclass(frozen=True)
class Record:
    name: str
    pid: int
    start_time: int

    def to_json(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Record:
        return cls(name=str(data["name"]), pid=int(str(data["pid"])), start_time=int(str(data["start_time"])))


def start_time_of(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (clock ticks since boot), or None if the pid is gone or a zombie."""
    try:
        raw = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def alive(record: Record) -> bool:
    return start_time_of(record.pid) == record.start_time


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    log: pathlib.Path,
    env: Mapping[str, str] | None = None,
    cwd: pathlib.Path | None = None,
    pass_fds: Sequence[int] = (),
) -> tuple[subprocess.Popen[bytes], Record]:
    """Start argv in its own session (so a terminal's Ctrl-C does not reach it), output to log;
    `pass_fds` stay open in it (all other descriptors are closed)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            list(argv), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None, cwd=cwd, start_new_session=True,
            pass_fds=tuple(pass_fds),
        )
    started = start_time_of(proc.pid)
    if started is None:
        proc.wait()
        raise RuntimeError(f"{name} exited at once with code {proc.returncode}; see {log}")
    return proc, Record(name=name, pid=proc.pid, start_time=started)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def stop(record: Record, *, grace_seconds: float = 10.0) -> None:
    """SIGTERM, wait up to the grace period, then SIGKILL; a no-op when the process is gone."""
    if not alive(record):
        return
    os.kill(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        _reap(record.pid)
        if not alive(record):
            return
        time.sleep(0.05)
    if alive(record):
        os.kill(record.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while alive(record) and time.monotonic() < deadline:
        _reap(record.pid)
        time.sleep(0.05)
