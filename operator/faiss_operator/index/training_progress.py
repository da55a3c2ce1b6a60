"""FAISS's k-means iterations, reported as they happen.

Training IVF's coarse quantizer is one long call: at 5M x 384, nlist 8,944, each of FAISS's 10
iterations takes minutes, and FAISS reports them only by printing to stdout when its
`ClusteringParameters.verbose` is set (faiss/Clustering.cpp: `Iteration i (t s, search s s):
objective=... imbalance=... nsplit=...`, each line flushed). `reporting_iterations` sets that flag,
points file descriptor 1 at a pipe for the length of the call, and a thread turns each iteration
line into an `on_iteration(done, iterations, objective)` call. FAISS's other k-means lines
(`Clustering n points in dD to k clusters ...`) are logged at INFO, so that a build's log keeps one
format; anything else printed meanwhile (another thread's output) is passed on to the real stdout.

FAISS stops early when the objective stops changing (`Converged at iteration i`): `done` then
never reaches `iterations`. The capture is process-wide and one at a time: a training that starts
while another is being reported, or in a process without a usable stdout, runs unreported. The
callback runs on the relay thread, while FAISS's call is still running.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

logger = logging.getLogger(__name__)

# on_iteration(done, iterations, objective): `done` counts from 1; `objective` as FAISS printed it.
OnIteration = Callable[[int, int, str], None]

_ITERATION = re.compile(rb"^\s*Iteration (?P<index>\d+) \([\d.]+ s, search [\d.]+ s\): objective=(?P<objective>\S+)")
# The other lines FAISS's Clustering prints when verbose (faiss/Clustering.cpp).
_FAISS_LINE = re.compile(rb"^\s*(Clustering \d+ points|Preprocessing in|Sampling a subset|Converged at|Outer iteration|Objective improved)")
_LINE_END = re.compile(rb"[\r\n]")
_capturing = threading.Lock()


@contextlib.contextmanager
def reporting_iterations(parameters: Any, on_iteration: OnIteration) -> Iterator[None]:
    """Within the block, each k-means iteration run with `parameters` (a faiss
    ClusteringParameters) calls `on_iteration`; its exceptions are logged, never raised into
    FAISS's call."""
    if not _capturing.acquire(blocking=False):
        yield
        return
    try:
        saved_stdout = _duplicate_stdout()
        if saved_stdout is None:
            yield
            return
        with _relayed_stdout(saved_stdout, parameters, on_iteration):
            yield
    finally:
        _capturing.release()


@contextlib.contextmanager
def _relayed_stdout(saved_stdout: int, parameters: Any, on_iteration: OnIteration) -> Iterator[None]:
    """Point file descriptor 1 at a pipe read by the relay; give it back and close `saved_stdout`
    on the way out, whatever happened."""
    verbose = parameters.verbose
    read_end: int | None = None
    relay: threading.Thread | None = None
    try:
        read_end, write_end = os.pipe()
        _flush_stdout()  # what was printed before goes where it was going
        os.dup2(write_end, 1)
        os.close(write_end)
        relay = threading.Thread(
            target=_relay, args=(read_end, saved_stdout, int(parameters.niter), on_iteration),
            name="kmeans-progress", daemon=True,
        )
        relay.start()
        parameters.verbose = True
        yield
    finally:
        parameters.verbose = verbose
        _flush_stdout()  # C stdio's buffer (FAISS's last "\n") goes to the pipe, not later to stdout
        os.dup2(saved_stdout, 1)  # closes the pipe's only write end: the relay reads to its end
        if relay is not None:
            relay.join()
        elif read_end is not None:
            os.close(read_end)
        os.close(saved_stdout)


def _duplicate_stdout() -> int | None:
    """A copy of file descriptor 1 to restore it from, or None when there is no stdout to capture."""
    if sys.stdout is None:
        return None
    try:
        os.fstat(1)
        return os.dup(1)
    except OSError:
        return None


def _flush_stdout() -> None:
    with contextlib.suppress(OSError, ValueError, AttributeError):
        sys.stdout.flush()
    _libc().fflush(None)


@functools.cache
def _libc() -> Any:
    return ctypes.CDLL(None)


def _relay(read_end: int, stdout: int, iterations: int, on_iteration: OnIteration) -> None:
    """Read the pipe to its end (FAISS blocks on a full pipe, so this never stops early)."""
    pending = b""
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        while chunk := pipe.read(65536):
            *lines, pending = _LINE_END.split(pending + chunk)
            for line in lines:
                _handle(line, stdout, iterations, on_iteration)
    _handle(pending, stdout, iterations, on_iteration)


def _handle(line: bytes, stdout: int, iterations: int, on_iteration: OnIteration) -> None:
    found = _ITERATION.match(line)
    if found is not None:
        try:
            on_iteration(int(found["index"]) + 1, iterations, found["objective"].decode())
        except Exception:  # noqa: BLE001 - a report must not stop the relay, or FAISS blocks on the pipe
            logger.exception("Reporting k-means iteration %s failed", found["index"].decode())
    elif _FAISS_LINE.match(line):
        logger.info("FAISS: %s", line.decode(errors="replace").strip())
    elif line.strip():
        with contextlib.suppress(OSError):
            os.write(stdout, line + b"\n")
