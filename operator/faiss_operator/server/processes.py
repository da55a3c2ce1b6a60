"""Several serving processes on one port: `faiss-operator serve --workers N`.

One Python process answers HTTP on one event-loop thread, and that thread, not FAISS, limits a
serving pod's throughput (README "Benchmarks: serving"). With --workers N the main process forks
N serving processes before anything is loaded; each binds the port with SO_REUSEPORT (the kernel
spreads connections over them) and loads its own copy of the index, so memory is N times the
index. The pod reports ready only when every process is: each /readyz consults a counter shared
by all of them. SIGTERM to the main process is passed on to every serving process, each drains
as a single process does, and the main process exits 0 once all have exited 0. A serving process
that dies on its own takes the others down (exit 1), so that the kubelet restarts the pod rather
than leaving it serving at reduced capacity.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import socket
from collections.abc import Callable
from types import FrameType

logger = logging.getLogger(__name__)


def reuseport_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


class ReadyGate:
    """How many of the pod's serving processes are ready, shared across the fork."""

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self._count = multiprocessing.get_context("fork").Value("i", 0)

    def mark_ready(self) -> None:
        with self._count.get_lock():
            self._count.value += 1

    def waiting_for(self) -> int:
        return max(0, self.processes - int(self._count.value))


def supervise(processes: int, serve_one: Callable[[int], int]) -> int:
    """Fork `processes` children running serve_one(number); return the exit code for the pod."""
    children: dict[int, int] = {}
    for number in range(processes):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = serve_one(number)
            except Exception:
                logger.exception("Serving process failed to start: number=%d", number)
            finally:
                os._exit(code)
        children[pid] = number
    logger.info("Started serving processes: pids=%s", sorted(children))
    stopping = False

    def stop_all(sig: int) -> None:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def forward(sig: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        stop_all(sig)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    result = 0
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        number = children.pop(pid, -1)
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            logger.error("Serving process failed: number=%d pid=%d exit=%d", number, pid, code)
            result = result or (code if code > 0 else 1)
        if not stopping:
            logger.error("Serving process exited on its own, stopping the others: number=%d pid=%d", number, pid)
            stopping = True
            result = result or 1
            stop_all(signal.SIGTERM)
    return result
