"""FAISS's k-means iterations, reported as they happen.

Training IVF's coarse quantizer is one long call: at 5M x 384, nlist 8,944, each of FAISS's 10
iterations takes minutes, and FAISS reports them only by printing to stdout when its
`ClusteringParameters.verbose` is set (faiss/Clustering.cpp: `Iteration i (t s, search s s):
objective=... imbalance=... nsplit=...`, each line flushed). `reporting_iterations` sets that flag,
points file descriptor 1 at a pipe for the length of the call, and a thread turns each iteration
line into an `on_iteration(done, iterations, fields)` call. Every other line printed meanwhile
(FAISS's `Clustering n points in dD to k clusters ...`, or another thread's) is logged at INFO,
so that a build's log keeps one format.

One capture at a time per process: a training that starts while another is being reported runs
unreported rather than nesting the redirection.
"""

from __future__ import annotations

import ctypes
import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

logger = logging.getLogger(__name__)

# on_iteration(done, iterations, {"seconds", "objective", "imbalance"}): `done` counts from 1.
OnIteration = Callable[[int, int, dict[str, str]], None]

_ITERATION = re.compile(
    rb"Iteration (?P<index>\d+) \((?P<seconds>[\d.]+) s, search [\d.]+ s\): "
    rb"objective=(?P<objective>\S+) imbalance=(?P<imbalance>\S+)"
)
_LINE_END = re.compile(rb"[\r\n]")
_capturing = threading.Lock()
_libc = ctypes.CDLL(None)


@contextmanager
def reporting_iterations(parameters: Any, on_iteration: OnIteration) -> Iterator[None]:
    """Within the block, each k-means iteration run with `parameters` (a faiss
    ClusteringParameters) calls `on_iteration`; its exceptions are logged, never raised into
    FAISS's call."""
    if not _capturing.acquire(blocking=False):
        yield
        return
    try:
        read_end, write_end = os.pipe()
        sys.stdout.flush()
        saved_stdout = os.dup(1)
        os.dup2(write_end, 1)
        os.close(write_end)
        relay = threading.Thread(
            target=_relay, args=(read_end, int(parameters.niter), on_iteration),
            name="kmeans-progress", daemon=True,
        )
        relay.start()
        verbose = parameters.verbose
        parameters.verbose = True
        try:
            yield
        finally:
            parameters.verbose = verbose
            _libc.fflush(None)  # C stdio's buffer (FAISS's last "\n") goes to the pipe, not later to stdout
            sys.stdout.flush()
            os.dup2(saved_stdout, 1)  # closes the pipe's only write end: the relay reads to its end
            relay.join()
            os.close(saved_stdout)
    finally:
        _capturing.release()


def _relay(read_end: int, iterations: int, on_iteration: OnIteration) -> None:
    """Read the pipe to its end (FAISS blocks on a full pipe, so this never stops early)."""
    pending = b""
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        while chunk := pipe.read(65536):
            *lines, pending = _LINE_END.split(pending + chunk)
            for line in lines:
                _handle(line, iterations, on_iteration)
    _handle(pending, iterations, on_iteration)


def _handle(line: bytes, iterations: int, on_iteration: OnIteration) -> None:
    found = _ITERATION.search(line)
    if found is None:
        if line.strip():
            logger.info("FAISS: %s", line.decode(errors="replace").strip())
        return
    fields = {name: found[name].decode() for name in ("seconds", "objective", "imbalance")}
    try:
        on_iteration(int(found["index"]) + 1, iterations, fields)
    except Exception:  # noqa: BLE001 - a report must not stop the relay, or FAISS blocks on the pipe
        logger.exception("Reporting k-means iteration %s failed", found["index"].decode())
