"""The serving process's signal handler only records a signal; the event loop's next tick acts.

A handler runs in the main thread wherever that thread was interrupted. Under `--workers`, the
metrics live in prometheus-client's multiprocess files behind one non-reentrant lock, which the
main thread holds while it counts a request; a handler that drained right there (draining sets
the readiness gauge) waited for that lock forever: a worker hung after SIGTERM arrived just
after a request.
"""

from __future__ import annotations

import asyncio
import signal
import threading

import uvicorn
from faiss_operator.server import command, processes


class _Service:
    """What the server asks of the search service on a signal, behind a non-reentrant lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.drained = 0

    def begin_draining(self) -> None:
        with self.lock:
            self.drained += 1


def _server(service: _Service, *, drain_delay: float = 0.0) -> command._DrainingServer:
    config = uvicorn.Config(app=lambda scope, receive, send: None, lifespan="off")
    return command._DrainingServer(config, service, drain_delay, supervised=True)  # type: ignore[arg-type]


def test_a_signal_while_the_interrupted_thread_holds_a_lock_returns_at_once_and_the_next_tick_drains() -> None:
    service = _Service()
    server = _server(service)

    def interrupted_while_holding_the_lock() -> None:
        with service.lock:
            server.handle_exit(signal.SIGTERM, None)

    thread = threading.Thread(target=interrupted_while_holding_the_lock, daemon=True)
    thread.start()
    thread.join(timeout=5)
    assert not thread.is_alive(), "the signal handler blocked on a lock its interrupted thread holds"
    assert (service.drained, server.should_exit) == (0, False)

    assert asyncio.run(server.on_tick(1)) is True
    assert (service.drained, server.should_exit) == (1, True)


def test_a_repeated_sigterm_under_a_supervisor_is_one_drain_and_stop_at_once_stops() -> None:
    service = _Service()
    server = _server(service, drain_delay=30.0)
    server.handle_exit(signal.SIGTERM, None)
    server.handle_exit(signal.SIGTERM, None)  # the process group's copy and the forwarded one
    assert asyncio.run(server.on_tick(1)) is False  # draining: still serving during the delay
    assert service.drained == 1
    server.handle_exit(processes.STOP_AT_ONCE, None)
    assert asyncio.run(server.on_tick(2)) is True
