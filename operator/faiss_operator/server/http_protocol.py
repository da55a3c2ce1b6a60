"""The serving pod's HTTP/1.1 connections: POST /v1/search answered here, every other request by Starlette.

An `asyncio.Protocol` with httptools' parser (llhttp, in C), run by uvicorn's `Server` as its
`http` protocol class, so the sockets, `--workers` SO_REUSEPORT listeners, signals and graceful
shutdown stay uvicorn's. A search request is parsed, queued for the loop turn's batch and
answered from the batch's callback, with no ASGI messages, task or coroutine per request
(issue 12 measured ~60 µs of CPU per request for uvicorn's ASGI cycle on a ~150 µs search);
any other request (health, readiness, info, metrics, evaluation sample) is handed to the
Starlette app as one buffered ASGI call. What uvicorn's own protocol guarantees is kept, and
each point is tested on raw sockets (tests/server/test_http_protocol.py):

* Request head (request line and headers) at most MAX_HEAD_BYTES, else 431; likewise a chunked
  body's framing and trailers, at most MAX_HEAD_BYTES plus 8 bytes per body byte.
* Body limit (`--max-body-bytes`): a Content-Length over it is answered 413 before any of the
  body is read (without `100 Continue`); a chunked body is cut with 413 the moment it passes it.
* `Expect: 100-continue`: `100 Continue` is written once the head is accepted, in turn with the
  connection's earlier answers, unless the body has arrived already; any other expectation 417.
* Keep-alive: HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`,
  answered with it. An answer to a request that ends the connection says `Connection: close`,
  and the connection closes once it is written.
* Pipelining: the requests of a connection are answered in the order they came, whatever
  order their searches finish in.
* Back-pressure: reading pauses while the transport's write buffer is over its high-water mark
  or MAX_PIPELINED answers are pending on the connection, and resumes when both have drained.
* Idle timeout (uvicorn's `timeout_keep_alive`, `--keep-alive-seconds`): a connection that
  received nothing for that long is closed when nothing is pending; a request half received by
  then is answered 408. Time with reading paused (back-pressure) does not count.
* Graceful drain: on SIGTERM uvicorn stops accepting and calls `shutdown()`; an idle connection
  closes at once, a busy one after answering the requests received so far (the last answer says
  `Connection: close`; a request pipelined after them is not read).
* Malformed HTTP: 400. Every refusal (400, 408, 413, 417, 431) is JSON {"error": message}, says
  `Connection: close`, and the connection then discards what the client still sends for up to
  LINGER_SECONDS before closing, so that the client reads the answer instead of a reset.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import http
import logging
import typing
import urllib.parse
from typing import Any

import httptools
import uvicorn
from starlette.types import ASGIApp, Message
from uvicorn.server import ServerState

from faiss_operator.contract import serving_http
from faiss_operator.server.search_endpoint import SearchEndpoint, error_body

logger = logging.getLogger(__name__)

MAX_HEAD_BYTES = 32 * 1024
"""Most bytes of a request line and headers; nginx's default large_client_header_buffers (4 × 8k)."""
MAX_PIPELINED = 32
"""Most requests of one connection awaiting their answers before reading pauses."""
LINGER_SECONDS = 2.0
"""After a refusal, how long the rest of the client's request is read and dropped before closing."""

_STATUS_LINES = {status.value: f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode() for status in http.HTTPStatus}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_JSON_HEADER = b"content-type: application/json\r\n"
_CLOSE_HEADER = b"connection: close\r\n"
_KEEP_ALIVE_HEADER = b"connection: keep-alive\r\n"
_SEARCH_PATH = serving_http.SEARCH_PATH.encode("ascii")
_PROBE_HEADER = serving_http.header_key(serving_http.PROBE_HEADER)
_PROBE_VALUE = serving_http.PROBE_VALUE.encode("ascii")
_BINARY = b"application/octet-stream"  # the compact request form: little-endian float32 rows
_FRAMING_HEADERS = frozenset({b"content-length", b"transfer-encoding", b"connection", b"keep-alive"})


class _Refused(Exception):
    """Raised from a parser callback to stop parsing after a refusal has been answered."""


class _Exchange:
    """One request of a connection and, once known, its answer."""

    __slots__ = ("head_only", "keep_alive", "http10", "continue_wanted", "status", "headers", "body")

    def __init__(self, *, head_only: bool, keep_alive: bool, http10: bool) -> None:
        self.head_only = head_only  # HEAD: the answer's headers without its body
        self.keep_alive = keep_alive
        self.http10 = http10
        self.continue_wanted = False  # `100 Continue` to write when this exchange reaches the head
        self.status: int | None = None
        self.headers = b""
        self.body = b""


def protocol_factory(endpoint: SearchEndpoint) -> Any:
    """The `http` argument of uvicorn.Config: the protocol class with the search endpoint bound."""
    return functools.partial(HttpProtocol, endpoint=endpoint)


class HttpProtocol(asyncio.Protocol):
    """One client connection (see the module docstring). Constructed by uvicorn's Server."""

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        endpoint: SearchEndpoint,
    ) -> None:
        if not config.loaded:
            config.load()
        self._app: ASGIApp = config.loaded_app
        self._state = server_state
        self._endpoint = endpoint
        self._loop = _loop or asyncio.get_running_loop()
        self._idle_seconds = float(config.timeout_keep_alive)
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._pending: collections.deque[_Exchange] = collections.deque()
        self._writing_paused = False
        self._reading_paused = False
        self._ignore_input = False  # a refusal or a last request was read: what follows is dropped
        self._shutting_down = False
        self._linger_wanted = False  # the answer ending the connection is a refusal
        self._last_seen = 0.0
        self._idle_timer: asyncio.TimerHandle | None = None
        self._disconnected: asyncio.Future[None] | None = None
        self._default_headers: tuple[list[tuple[bytes, bytes]], bytes] | None = None
        # The request being read.
        self._in_request = False
        self._head_done = False
        self._head_began_earlier = False
        self._completed_in_chunk = False
        self._head_bytes = 0
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._content_type = b""
        self._content_length = 0
        self._expect: bytes | None = None
        self._chunked = False
        self._probe = False  # X-Faiss-Probe: 1, the operator's live analysis (metrics.source_of)
        self._body: list[bytes] = []
        self._body_bytes = 0
        self._framing_bytes = 0  # bytes of a chunked request after its head that are not body
        self._exchange: _Exchange | None = None
        self._method = b""
        self._path = b""
        self._query = b""

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = typing.cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._state.connections.add(self)  # type: ignore[arg-type]  # a set of uvicorn's own protocol types
        self._touch()

    def connection_lost(self, exc: Exception | None) -> None:
        self._state.connections.discard(self)
        self._ignore_input = True
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if self._disconnected is not None and not self._disconnected.done():
            self._disconnected.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self._ignore_input:
            return
        self._last_seen = self._loop.time()
        self._completed_in_chunk = False
        after_head = self._in_request and self._head_done  # the head was read before this chunk
        body_before = self._body_bytes
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # The request before the upgrade was answered as an ordinary one; what follows it
            # would be another protocol, which this server does not speak.
            self._end_after_current()
        except httptools.HttpParserCallbackError as error:
            if not isinstance(error.__context__, _Refused):
                raise
        except httptools.HttpParserError as error:
            self._refuse(400, f"malformed HTTP request: {error}")
            return
        if after_head and self._in_request and not self._completed_in_chunk and not self._ignore_input:
            # Chunk framing and trailers: not body, but llhttp buffers a trailer until it ends.
            self._framing_bytes += len(data) - (self._body_bytes - body_before)
            if self._framing_bytes > MAX_HEAD_BYTES + 8 * self._body_bytes:
                self._refuse(431, f"chunk framing and trailers are larger than the limit of {MAX_HEAD_BYTES} bytes "
                                  "plus 8 per body byte")
                return
        if self._in_request and not self._head_done and not self._ignore_input:
            # An unfinished head: count what llhttp holds back until a header is complete. The
            # whole chunk is head when the head began before it, or when no request ended in it
            # (it began at the chunk's first byte); otherwise its start is unknown and the next
            # chunk counts in full (at most one read, 256 KiB with uvloop, escapes the count).
            if self._head_began_earlier:
                self._head_bytes += len(data)
            elif not self._completed_in_chunk:
                self._head_bytes = max(self._head_bytes, len(data))
            self._head_began_earlier = True
            try:
                self._check_head_size()
            except _Refused:
                pass

    def eof_received(self) -> bool:
        # The client will send nothing more: answer what it asked, then close.
        self._ignore_input = True
        if self._pending:  # answers not written yet, whether known or still being computed
            self._pending[-1].keep_alive = False
            return True  # keep the transport open for writing
        return False  # closes the transport

    def pause_writing(self) -> None:
        self._writing_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._update_reading()

    # uvicorn.Server

    def shutdown(self) -> None:
        """Graceful drain: close now if idle, else after answering what was received so far (the
        request being read is the last; requests pipelined after it are not read)."""
        self._shutting_down = True
        if self._in_request:
            if self._exchange is not None:
                self._exchange.keep_alive = False  # else on_headers_complete makes it the last
        elif self._pending:
            self._pending[-1].keep_alive = False
            self._ignore_input = True
        elif self._transport is not None:
            self._transport.close()

    # httptools callbacks

    def on_message_begin(self) -> None:
        if self._ignore_input:
            raise _Refused
        self._in_request = True
        self._head_done = False
        self._head_began_earlier = False
        self._head_bytes = 0
        self._url = b""
        self._headers = []
        self._content_type = b""
        self._content_length = 0
        self._expect = None
        self._chunked = False
        self._probe = False
        self._body = []
        self._body_bytes = 0
        self._framing_bytes = 0
        self._exchange = None

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_bytes += len(url)
        self._check_head_size()

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._head_done:  # a trailer after a chunked body: framing and form were settled by the head
            return
        name = name.lower()
        self._headers.append((name, value))
        self._head_bytes += len(name) + len(value) + 4
        self._check_head_size()
        if name == b"content-type":
            self._content_type = value
        elif name == b"content-length":
            self._content_length = int(value)  # llhttp refused it unless it is digits
        elif name == b"expect":
            self._expect = value.strip().lower()
        elif name == b"transfer-encoding":
            self._chunked = b"chunked" in value.lower()
        elif name == _PROBE_HEADER:
            self._probe = value.strip() == _PROBE_VALUE

    def on_headers_complete(self) -> None:
        self._head_done = True
        parser = self._parser
        method = parser.get_method()
        http10 = parser.get_http_version() == "1.0"
        keep_alive = parser.should_keep_alive() and not self._shutting_down
        exchange = _Exchange(head_only=method == b"HEAD", keep_alive=keep_alive, http10=http10)
        self._exchange = exchange
        self._method = method
        self._pending.append(exchange)
        if len(self._pending) >= MAX_PIPELINED:
            self._update_reading()
        if self._url.startswith(_SEARCH_PATH) and b"#" not in self._url:  # the hot path, split by hand
            self._path, _, self._query = self._url.partition(b"?")
        else:
            try:
                url = httptools.parse_url(self._url)
            except httptools.HttpParserInvalidURLError:
                self._refuse(400, f"malformed request target {self._url[:200].decode(errors='replace')!r}")
                raise _Refused from None
            self._path, self._query = url.path, url.query or b""
        if self._expect is not None and self._expect != b"100-continue":
            self._refuse(417, f"unsupported expectation {self._expect.decode(errors='replace')!r}; "
                              "only 100-continue is")
            raise _Refused
        refusal = self._endpoint.refuse_length(self._content_length)
        if refusal is not None:
            self._refuse(413, body=refusal)
            raise _Refused
        if self._expect is not None and (self._content_length or self._chunked):
            exchange.continue_wanted = True
            if self._pending[0] is exchange:
                self._write_ready()

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > self._endpoint.max_body_bytes:
            self._refuse(413, f"request body is larger than the limit of {self._endpoint.max_body_bytes} bytes")
            raise _Refused
        self._body.append(body)

    def on_message_complete(self) -> None:
        exchange = self._exchange
        assert exchange is not None
        self._in_request = False
        self._completed_in_chunk = True
        exchange.continue_wanted = False  # the body is here; nothing to invite
        if not exchange.keep_alive:
            self._ignore_input = True  # the last request of this connection
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        path = self._path
        if b"%" in path:  # routed by its decoded form, as uvicorn and Starlette do
            path = urllib.parse.unquote_to_bytes(path)
        if path == _SEARCH_PATH and self._method == b"POST":
            self._endpoint.start(
                body, self._query,
                binary=self._content_type.split(b";", 1)[0].strip().lower() == _BINARY,
                probe=self._probe,
                answer=functools.partial(self._answer_search, exchange),
            )
        else:
            self._start_asgi(exchange, body)

    # Answers

    def _answer_search(self, exchange: _Exchange, status: int, body: bytes) -> None:
        self._answer(exchange, status, self._endpoint.answer_headers(), body)

    def _answer(self, exchange: _Exchange, status: int, headers: bytes, body: bytes) -> None:
        """`exchange`'s answer is known; written now if no earlier one on the connection waits."""
        exchange.status, exchange.headers, exchange.body = status, headers, body
        if self._pending and self._pending[0] is exchange:
            self._write_ready()

    def _write_ready(self) -> None:
        """Write every answer at the head of the queue that is known, in order."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        pending = self._pending
        while pending:
            exchange = pending[0]
            if exchange.status is None:
                if exchange.continue_wanted:
                    exchange.continue_wanted = False
                    transport.write(_CONTINUE)
                break
            pending.popleft()
            close = not exchange.keep_alive or (self._shutting_down and not pending and not self._in_request)
            transport.write(self._encode(exchange, close))
            self._state.total_requests += 1
            if close:
                self._ignore_input = True
                if self._linger_wanted:
                    self._linger()
                else:
                    transport.close()
                return
        self._last_seen = self._loop.time()
        if self._reading_paused:
            self._update_reading()
        if not pending and not self._in_request:
            self._touch()

    def _encode(self, exchange: _Exchange, close: bool) -> bytes:
        status = exchange.status
        assert status is not None
        body = exchange.body
        return b"".join((
            _STATUS_LINES.get(status) or f"HTTP/1.1 {status} \r\n".encode(),
            self._date_and_server_headers(),
            exchange.headers,
            _CLOSE_HEADER if close else _KEEP_ALIVE_HEADER if exchange.http10 else b"",
            b"content-length: %d\r\n\r\n" % len(body),
            b"" if exchange.head_only else body,
        ))

    def _date_and_server_headers(self) -> bytes:
        headers = self._state.default_headers  # replaced by uvicorn once a second (the Date)
        cached = self._default_headers
        if cached is None or cached[0] is not headers:
            cached = self._default_headers = (headers, b"".join(b"%s: %s\r\n" % pair for pair in headers))
        return cached[1]

    # Refusals, lingering, idleness, back-pressure

    def _refuse(self, status: int, message: str = "", body: bytes | None = None) -> None:
        """Answer the request being read with `status` and end the connection after it."""
        logger.info("Refused request: status=%d reason=%s", status, message or body)
        exchange = self._exchange if self._in_request and self._exchange is not None else None
        if exchange is None:
            exchange = _Exchange(head_only=False, keep_alive=False, http10=False)
            self._pending.append(exchange)
        exchange.keep_alive = False
        exchange.continue_wanted = False
        self._ignore_input = True
        self._linger_wanted = True
        self._in_request = False
        self._answer(exchange, status, _JSON_HEADER, body if body is not None else error_body(message))

    def _linger(self) -> None:
        """Half-close after a refusal and drop what the client still sends, so it reads the answer."""
        transport = self._transport
        assert transport is not None
        if self._reading_paused:
            self._reading_paused = False
            transport.resume_reading()
        if transport.can_write_eof():
            transport.write_eof()
        self._loop.call_later(LINGER_SECONDS, transport.close)

    def _end_after_current(self) -> None:
        self._ignore_input = True
        if self._pending:
            self._pending[-1].keep_alive = False
            self._write_ready()
        elif self._transport is not None:
            self._transport.close()

    def _check_head_size(self) -> None:
        if self._head_bytes > MAX_HEAD_BYTES and not self._head_done:
            self._refuse(431, f"request line and headers are larger than the limit of {MAX_HEAD_BYTES} bytes")
            raise _Refused

    def _touch(self) -> None:
        self._last_seen = self._loop.time()
        if self._idle_timer is None:
            self._idle_timer = self._loop.call_later(self._idle_seconds, self._idle_check)

    def _idle_check(self) -> None:
        self._idle_timer = None
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        remaining = self._last_seen + self._idle_seconds - self._loop.time()
        if remaining > 0 or self._reading_paused or (
            self._pending and self._pending[-1].status is None and not self._in_request
        ):  # not idle: the server holds the client back, or an answer is being computed
            self._idle_timer = self._loop.call_later(max(remaining, 0.1), self._idle_check)
            return
        if self._in_request:
            self._refuse(408, f"request not completed: nothing received for {self._idle_seconds:g} s")
        elif not self._pending:
            transport.close()
        else:
            self._idle_timer = self._loop.call_later(self._idle_seconds, self._idle_check)

    def _update_reading(self) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        paused = self._writing_paused or len(self._pending) >= MAX_PIPELINED
        if paused and not self._reading_paused:
            self._reading_paused = True
            transport.pause_reading()
        elif not paused and self._reading_paused and len(self._pending) <= MAX_PIPELINED // 2:
            self._reading_paused = False
            self._last_seen = self._loop.time()  # the client's silence while paused was the server's doing
            transport.resume_reading()

    # Everything but the search: one buffered ASGI call

    def _start_asgi(self, exchange: _Exchange, body: bytes) -> None:
        transport = self._transport
        assert transport is not None
        try:
            path = self._path.decode("ascii")
        except UnicodeDecodeError:
            self._answer(exchange, 400, _JSON_HEADER, error_body("the request path must be ASCII (percent-encode the rest)"))
            return
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.0" if exchange.http10 else "1.1",
            "method": self._method.decode("ascii"),
            "scheme": "http",
            "path": urllib.parse.unquote(path),
            "raw_path": self._path,
            "query_string": self._query,
            "root_path": "",
            "headers": self._headers,
            "client": _address(transport.get_extra_info("peername")),
            "server": _address(transport.get_extra_info("sockname")),
            "state": {},
        }
        task = self._loop.create_task(self._run_asgi(exchange, scope, body))
        self._state.tasks.add(task)
        task.add_done_callback(self._state.tasks.discard)

    async def _run_asgi(self, exchange: _Exchange, scope: dict[str, Any], body: bytes) -> None:
        status: int | None = None
        headers: list[bytes] = []
        chunks: list[bytes] = []
        body_given = False

        async def receive() -> Message:
            nonlocal body_given
            if not body_given:
                body_given = True
                return {"type": "http.request", "body": body, "more_body": False}
            await self._disconnect_future()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                for name, value in message.get("headers", []):
                    if name.lower() not in _FRAMING_HEADERS:
                        headers.append(b"%s: %s\r\n" % (name, value))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        try:
            await self._app(scope, receive, send)
        except Exception:  # Starlette answers 500 itself and re-raises for the server to log
            logger.exception("Failed to answer request: path=%s", scope["path"])
            if status is None:
                status, headers, chunks = 500, [_JSON_HEADER], [error_body("internal error")]
        if status is None:
            logger.error("The app ended without an answer: path=%s", scope["path"])
            status, headers, chunks = 500, [_JSON_HEADER], [error_body("internal error")]
        self._answer(exchange, status, b"".join(headers), b"".join(chunks))

    def _disconnect_future(self) -> asyncio.Future[None]:
        if self._disconnected is None:
            self._disconnected = self._loop.create_future()
            if self._transport is None or self._transport.is_closing():
                self._disconnected.set_result(None)
        return self._disconnected


def _address(address: Any) -> tuple[str, int] | None:
    if isinstance(address, tuple) and len(address) >= 2:
        return str(address[0]), int(address[1])
    return None
