"""The main process of `serve --workers N` once its serving processes are forked: pass signals on,
wait for them, and exit with the pod's code. Standard library only.

processes.supervise forks the serving processes from the fully imported `serve` program (so they
share its modules), then replaces itself with this module in a fresh interpreter
(`python -I -S`, run by `exec`; same process id, same children): a process that only waits
need not hold the ~30-40 MiB of modules the serving processes use. Measured on a 50k x 384 HNSW32
index (docs/serving.md, "Memory"): --workers 2 totals 18-20 MiB less PSS than with the main process
staying the full program — 3 MiB of anonymous memory (its 9 MiB private, mostly the originals of
pages both serving processes had copied on write, against this process's 6) and 15 MiB of library
pages only it had touched while importing (clean page cache, no longer mapped). Importing
prometheus-client alone would cost this process ~10 MiB, so the live gauge files of a finished
process are removed here by prometheus-client's own naming (`mark_process_dead`).

    python -I -S -c <boot> LOG_LEVEL METRICS_DIR|- STOP_AT_ONCE NUMBER=PID...
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import sys
from pathlib import Path
from types import FrameType

logger = logging.getLogger("faiss_operator.server.processes")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# prometheus_client.multiprocess.mark_process_dead removes gauge_{mode}_{pid}.db for these modes.
LIVE_GAUGE_MODES = ("livemin", "livemax", "livesum", "liveall", "livemostrecent")


def mark_process_dead(pid: int, metrics_dir: Path) -> None:
    """Drop the live gauges (in flight, ready) of a finished serving process from `metrics_dir`,
    as prometheus_client.multiprocess.mark_process_dead does."""
    for mode in LIVE_GAUGE_MODES:
        with contextlib.suppress(FileNotFoundError):
            (metrics_dir / f"gauge_{mode}_{pid}.db").unlink()


def wait_for(children: dict[int, int], metrics_dir: Path | None, stop_at_once: int) -> int:
    """Wait for the serving processes `children` (pid -> number); return the exit code for the pod.

    SIGTERM or SIGINT is passed on to every serving process (a second one as `stop_at_once`); a
    serving process that exits on its own stops the others (exit 1). A process that exits has its
    live gauges dropped from `metrics_dir`."""
    stopping = False

    def stop_all(sig: int) -> None:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    signals = 0

    def forward(sig: int, frame: FrameType | None) -> None:
        nonlocal stopping, signals
        stopping = True
        signals += 1
        passed_on = sig if signals == 1 else stop_at_once
        stop_all(passed_on)
        logger.info("Forwarded signal to the serving processes: received=%d sent=%d pids=%s",
                    sig, passed_on, sorted(children))

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    # processes.supervise blocks both across the exec (a signal then would find no handler).
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    result = 0
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        number = children.pop(pid, -1)
        if metrics_dir is not None:
            mark_process_dead(pid, metrics_dir)
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


def main(argv: list[str]) -> int:
    """argv: LOG_LEVEL (a logging level number) METRICS_DIR (or "-") STOP_AT_ONCE (a signal
    number) and one NUMBER=PID per serving process. Removes METRICS_DIR at the end."""
    level, metrics, stop_at_once, *pairs = argv
    logging.basicConfig(level=int(level), format=LOG_FORMAT)
    children = {int(pid): int(number) for number, _, pid in (pair.partition("=") for pair in pairs)}
    metrics_dir = None if metrics == "-" else Path(metrics)
    try:
        return wait_for(children, metrics_dir, int(stop_at_once))
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
