"""`faiss-operator serve --artifact DIR`: the serving pod's main program.

HTTP starts first, so /healthz answers while the artifact is verified and loaded on a background
thread; /readyz turns 200 only after the warm-up. SIGTERM (what the kubelet sends) marks the pod
Draining, stops accepting connections, lets in-flight requests finish (up to --drain-seconds),
then exits 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import threading
from pathlib import Path
from types import FrameType

import uvicorn

from faiss_operator.contract import pod_args, pod_logs
from faiss_operator.index import artifact, faiss_index
from faiss_operator.server import (
    app as server_app, http_protocol, processes, requests, search_endpoint, service as server_service,
)

logger = logging.getLogger("faiss_operator.server")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # The flags a serving pod is given, declared once in the contract; then those for hand use.
    pod_args.add_flags(parser, pod_args.ServeArgs.FLAGS)
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on")
    parser.add_argument("--search-threads", type=int, default=None,
                        help="threads searching in parallel in each process; 0 searches on the event loop's thread, "
                             "a batch per loop turn (default: 0 with several workers, else the cores this process "
                             "may use)")
    parser.add_argument("--max-k", type=int, default=requests.Limits.max_k, help="largest k a search may ask for")
    parser.add_argument("--max-batch", type=int, default=requests.Limits.max_batch,
                        help="most query vectors in one request")
    parser.add_argument("--max-body-bytes", type=int, default=requests.Limits.max_body_bytes,
                        help="largest request body; a larger one is answered 413")
    parser.add_argument("--warmup-queries", type=int, default=server_service.DEFAULT_WARMUP_QUERIES,
                        help="searches run after loading and before /readyz turns 200")
    parser.add_argument("--keep-alive-seconds", type=float, default=5.0,
                        help="close a connection that received nothing for this long (a request half received "
                             "by then is answered 408); uvicorn's default")
    pod_logs.add_log_level(parser)


class _DrainingServer(uvicorn.Server):
    """Answers /readyz 503 from the first SIGTERM but keeps serving for `drain_delay` seconds,
    while Kubernetes takes the pod out of the Service's endpoints; only then stops listening
    and finishes in-flight requests. A second signal stops at once; under a supervisor
    (`supervised`, one of `--workers N`), only processes.STOP_AT_ONCE does, from the main process,
    and a repeated SIGTERM or SIGINT is the same request to drain (processes module docstring)."""

    def __init__(
        self, config: uvicorn.Config, service: server_service.SearchService, drain_delay: float,
        supervised: bool = False,
    ) -> None:
        super().__init__(config)
        self._service = service
        self._drain_delay = drain_delay
        self._supervised = supervised
        self._signalled = False
        self._received: list[int] = []  # appended by the signal handler, consumed by on_tick

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """The signal handler: it only records the signal, and `on_tick` acts on it within 0.1 s.
        A handler runs in the main thread wherever that thread was interrupted, possibly holding a
        lock that draining needs (prometheus-client's value lock, a logging stream), so acting here
        could deadlock the process (seen: a worker hung after SIGTERM right after a request)."""
        self._received.append(sig)
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True  # a second Ctrl-C while shutting down (main_loop no longer ticks)

    async def on_tick(self, counter: int) -> bool:
        while self._received:
            self._act(self._received.pop(0))
        return await super().on_tick(counter)

    def _act(self, sig: int) -> None:
        if self._supervised and sig == processes.STOP_AT_ONCE:
            logger.info("Received signal, stopping at once: signal=%d", sig)
            self._signalled = True
            self._stop(signal.SIGTERM, None)
            return
        if self._supervised and self._signalled:
            logger.info("Received signal while draining, already draining: signal=%d", sig)
            return
        if not self._signalled and self._drain_delay > 0:
            self._signalled = True
            logger.info("Received signal, draining: signal=%d delay_seconds=%.1f", sig, self._drain_delay)
            self._service.begin_draining()
            stop = threading.Timer(self._drain_delay, self._stop, args=(sig, None))
            stop.daemon = True
            stop.start()
            return
        if not self._signalled:
            self._signalled = True
            logger.info("Received signal, draining: signal=%d", sig)
        self._stop(sig, None)

    def _stop(self, sig: int, frame: FrameType | None) -> None:
        self._service.begin_draining()
        super().handle_exit(sig, frame)
        # uvicorn re-raises a captured signal after its graceful shutdown, so the process would
        # die by SIGTERM before our own cleanup; a drained pod exits 0 instead.
        captured = getattr(self, "_captured_signals", None)
        if isinstance(captured, list):
            captured.clear()


def run(args: argparse.Namespace) -> int:
    pod_logs.configure(args.log_level)
    if args.workers is None:
        args.workers = processes.available_cpus()
    if args.search_threads is None:
        args.search_threads = 0 if args.workers > 1 else processes.available_cpus()
    for name, value in (("--workers", args.workers), ("--max-k", args.max_k),
                        ("--max-batch", args.max_batch), ("--max-body-bytes", args.max_body_bytes)):
        if value < 1:
            logger.error("Refused argument: %s must be >= 1 (got %d)", name, value)
            return 2
    if args.search_threads < 0:
        logger.error("Refused argument: --search-threads must be >= 0 (got %d)", args.search_threads)
        return 2
    if args.keep_alive_seconds <= 0:
        logger.error("Refused argument: --keep-alive-seconds must be > 0 (got %s)", args.keep_alive_seconds)
        return 2
    for name, seconds in (("--drain-delay", args.drain_delay), ("--drain-seconds", args.drain_seconds)):
        if not seconds >= 0:
            logger.error("Refused argument: %s must be >= 0 (got %s)", name, seconds)
            return 2
    if args.max_k > faiss_index.MAX_K:
        logger.error("Refused argument: --max-k must be <= %d (got %d)", faiss_index.MAX_K, args.max_k)
        return 2
    try:
        sockets = processes.listeners(args.host, args.port, args.workers)
    except processes.PortUnavailable as error:
        logger.error("Refused to serve: %s", error)
        return 1
    logger.info("Serving: workers=%d search_threads=%d", args.workers, args.search_threads)
    if args.workers == 1:
        return _serve(args, sockets[0], None, None)
    gate = processes.ReadyGate(args.workers)
    verification = processes.VerifyOnce()
    processes.share_before_fork()
    try:
        with processes.metrics_directory() as metrics_dir:
            return processes.supervise(
                args.workers,
                lambda number: _serve(args, _own(sockets, number), gate, (verification, metrics_dir)),
                metrics_dir,
            )
    except processes.ScratchDirectoryError as error:  # raised before any process is forked
        for sock in sockets:
            sock.close()
        logger.error("Cannot serve with --workers %d: %s", args.workers, error)
        return 1


def _own(sockets: list[socket.socket], number: int) -> socket.socket:
    """Serving process `number`'s listener; it closes its siblings' copies, so that a listener
    whose process died is closed and the kernel stops giving it connections."""
    for index, sock in enumerate(sockets):
        if index != number:
            sock.close()
    return sockets[number]


def _serve(
    args: argparse.Namespace, sock: socket.socket, gate: processes.ReadyGate | None,
    shared: tuple[processes.VerifyOnce, Path] | None,
) -> int:
    limits = requests.Limits(max_k=args.max_k, max_batch=args.max_batch, max_body_bytes=args.max_body_bytes)
    service = server_service.SearchService(
        args.artifact, limits=limits, workers=args.search_threads, warmup_queries=args.warmup_queries,
        revision=args.revision, search_defaults=args.search_params,
        verify=shared[0].verify if shared else artifact.verify_artifact,
        mmap=shared is not None,
        metrics_dir=shared[1] if shared else None,
    )
    endpoint = search_endpoint.SearchEndpoint(service)
    config = uvicorn.Config(
        server_app.create_app(service, endpoint.tally.flush, gate.waiting_for if gate else None),
        host=args.host,
        port=args.port,
        loop=_best("uvloop", "asyncio"),
        http=http_protocol.protocol_factory(endpoint),
        ws="none",
        lifespan="off",
        access_log=False,
        log_level=args.log_level,
        timeout_keep_alive=args.keep_alive_seconds,
        timeout_graceful_shutdown=args.drain_seconds,
        server_header=False,
    )
    server = _DrainingServer(config, service, args.drain_delay, supervised=gate is not None)
    if gate is not None:
        # Before and after uvicorn's own handlers (it restores these), a signal still means drain
        # or stop: a repeat arriving after the drain must not kill the drained process.
        for sig in (signal.SIGTERM, signal.SIGINT, processes.STOP_AT_ONCE):
            signal.signal(sig, server.handle_exit)

    def load() -> None:
        service.load()
        if gate is not None and service.phase is server_service.Phase.READY:
            gate.mark_ready()

    threading.Thread(target=load, name="load-artifact", daemon=True).start()
    try:
        server.run(sockets=[sock])
    finally:
        service.close()
    if not server.started:
        logger.error("Failed to start the HTTP server: host=%s port=%d", args.host, args.port)
        return 1
    logger.info("Stopped")
    return 0


def _best(preferred: str, fallback: str) -> str:
    try:
        __import__(preferred)
    except ImportError:
        return fallback
    return preferred
