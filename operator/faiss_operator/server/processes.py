"""Several serving processes on one port: `faiss-operator serve --workers N`.

One Python process answers HTTP on one event-loop thread, and that thread, not FAISS, limits a
serving pod's throughput (docs/benchmarks.md, "Benchmarks: serving"). With --workers N the main process forks
N serving processes before anything is loaded, so each answers /healthz at once; each listens on
its own SO_REUSEPORT socket (the kernel spreads connections over them), all bound by the main
process after checking that no other program holds the port (`listeners`). The first process to get there
verifies the artifact's checksums and the others use its verdict (VerifyOnce); each then maps the
index file read-only (IO_FLAG_MMAP_IFC), so the N processes share one copy of the index in the
page cache; what the serving processes import once they run is imported before the fork and the
collector's objects frozen (share_before_fork), so that they share those pages too. The pod reports ready only when every process is: each /readyz consults a counter
shared by all of them. Metrics are written by every process to a per-pod directory and /metrics
adds them up (prometheus-client's multiprocess mode, `metrics_directory`). SIGTERM to the main process is passed on to every serving process, each drains
as a single process does, and the main process exits 0 once all have exited 0. A second SIGTERM (or
SIGINT) to the main process is passed on as STOP_AT_ONCE; a serving process treats a repeated
SIGTERM as the same request to drain, since a kubelet or terminal that signals the whole process
group delivers each signal twice to it (directly and forwarded): taken as a second signal, it
would close the listener during the drain delay, while the pod is still a Service endpoint. A serving process
that dies on its own takes the others down (exit 1), so that the kubelet restarts the pod rather
than leaving it serving at reduced capacity.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import importlib
import logging
import math
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from faiss_operator.index import artifact
from faiss_operator.server import supervisor

logger = logging.getLogger(__name__)


CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
MESSAGE_BYTES = 4096
# From the main process to its serving processes: stop draining now (the pod got a second signal).
STOP_AT_ONCE = signal.SIGUSR1
# What a serving process imports only once it runs (uvicorn picks its event loop and HTTP protocol
# when it starts), beyond what `serve` imports anyway: imported by the main process before the fork
# (share_before_fork), so that the serving processes share these modules instead of each loading
# its own. A missing one (an optional dependency) is skipped; the serving process falls back as before.
SERVING_MODULES = (
    "uvloop",
    "httptools",
    "uvicorn.loops.auto",
    "uvicorn.loops.uvloop",
    "uvicorn.lifespan.off",
    "concurrent.futures.thread",
)


def available_cpus(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """The CPUs this pod may use: its cgroup v2 quota (`cpu.max`, "QUOTA PERIOD", i.e. the
    container's CPU limit) rounded up, else the CPUs the process may run on
    (os.sched_getaffinity), at least 1. The default of `serve --workers`."""
    cpus = _affinity()
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cpus


def _affinity() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return os.cpu_count() or 1


class VerifyOnce:
    """The artifact's checksums verified by one of the pod's processes, its verdict shared.

    Created before the fork; the first process to call `verify` hashes the files, the others
    wait for it and get the manifest (read again, not re-hashed) or the same error."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("fork")
        self._lock = context.Lock()
        self._state = context.Value("i", 0, lock=False)  # 0 not yet, 1 verified, 2 refused
        self._message = context.Array("c", MESSAGE_BYTES, lock=False)

    def verify(self, directory: Path) -> dict[str, Any]:
        """Raises artifact.ArtifactError (this process's or the verifying process's) or OSError."""
        with self._lock:
            if self._state.value == 1:
                return artifact.read_manifest(directory)
            if self._state.value == 2:
                raise artifact.ArtifactError(self._message.value.decode(errors="replace"))
            try:
                manifest = artifact.verify_artifact(directory)
            except Exception as error:
                self._message.value = str(error).encode()[: MESSAGE_BYTES - 1]
                self._state.value = 2
                raise
            self._state.value = 1
            logger.info("Verified artifact checksums for every serving process: artifact=%s pid=%d", directory, os.getpid())
            return manifest


class ScratchDirectoryError(OSError):
    """Several serving processes need a writable directory for their metric files, and none is."""


@contextlib.contextmanager
def metrics_directory() -> Iterator[Path]:
    """A fresh directory for the processes' metric files, removed afterwards (by the supervisor
    that supervise execs, when it exits); sets
    PROMETHEUS_MULTIPROC_DIR so that metrics created after the fork write there."""
    try:
        directory = Path(tempfile.mkdtemp(prefix="faiss-metrics-"))
    except OSError as error:  # no usable temporary directory (read-only root, nothing at /tmp)
        raise ScratchDirectoryError(
            f"no writable temporary directory for the serving processes' metrics ({error}); "
            "mount a writable volume (an emptyDir) at /tmp or set TMPDIR to a writable directory"
        ) from None
    previous = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    try:
        yield directory
    finally:
        if previous is None:
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        else:
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = previous
        shutil.rmtree(directory, ignore_errors=True)


class PortUnavailable(Exception):
    """The port cannot be listened on: another program holds it, or the host is not this machine's."""


def listeners(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` listening sockets on (host, port), bound by the main process before any fork.

    One socket is a plain listener that no other program can share. Several are SO_REUSEPORT
    listeners (the kernel spreads connections over them), which any later program of the same
    user could join: so the port is first probed with a socket without SO_REUSEPORT, which fails
    while anything else listens there, be it another `serve` or any other program. Two `serve`
    started in the same instant can still both pass the probe; one started later cannot.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    bound: list[socket.socket] = []
    try:
        if count > 1:
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                _bind(probe, host, port)
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            bound.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if count > 1:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            _bind(sock, host, port)
            sock.listen(2048)
    except BaseException:
        for sock in bound:
            sock.close()
        raise
    return bound


def _bind(sock: socket.socket, host: str, port: int) -> None:
    try:
        sock.bind((host, port))
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise PortUnavailable(f"port {port} on {host} is in use by another program") from None
        raise PortUnavailable(f"cannot listen on {host} port {port}: {error.strerror or error}") from None


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


def supervise(processes: int, serve_one: Callable[[int], int], metrics_dir: Path | None = None) -> int:
    """Fork `processes` children running serve_one(number), then become the supervisor that waits
    for them (server/supervisor.py, in a fresh interpreter by exec: same pid, same children), which
    exits with the pod's code and removes `metrics_dir`. Returns that code only if the exec fails
    (logged; the supervisor then runs in this process and the caller removes `metrics_dir`)."""
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
    # Held until the supervisor has its handlers: across the exec a signal would find none.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    argv = [sys.executable, "-I", "-S", "-c", _SUPERVISOR_BOOT, str(_PACKAGE_ROOT),
            str(logging.getLogger().getEffectiveLevel()), str(metrics_dir or "-"), str(int(STOP_AT_ONCE)),
            *(f"{number}={pid}" for pid, number in children.items())]
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    try:
        os.execv(sys.executable, argv)
    except OSError as error:
        logger.error("Could not start the supervisor, supervising from this process: error=%s", error)
    return supervisor.wait_for(children, metrics_dir, STOP_AT_ONCE)


# The directory holding the faiss_operator package, for the supervisor's fresh interpreter (-I -S:
# no site-packages, no environment), which imports only faiss_operator.server.supervisor.
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]
_SUPERVISOR_BOOT = (
    "import sys; sys.path.insert(0, sys.argv.pop(1)); "
    "from faiss_operator.server import supervisor; sys.exit(supervisor.main(sys.argv[1:]))"
)

def share_before_fork(modules: Iterable[str] = SERVING_MODULES) -> int:
    """Make what the main process holds shareable by the processes it is about to fork; returns
    the number of objects frozen.

    Imports `modules` (default SERVING_MODULES; one that is not installed is skipped), then moves
    every object the collector tracks into its permanent generation (gc.freeze, as the Python
    documentation advises before a fork): a serving process's collections then never write to
    these objects' headers, which would copy the memory pages they live on into that process.
    Measured on a 50k x 384 HNSW32 index (docs/benchmarks.md): --workers 2 totals 4 MiB less PSS.
    """
    for name in modules:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    gc.freeze()
    frozen = gc.get_freeze_count()
    logger.info("Shared with the serving processes before forking them: modules=%d frozen_objects=%d",
                len(sys.modules), frozen)
    return frozen
