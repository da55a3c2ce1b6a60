"""The connection handler's protections (server/http_protocol.py), each on raw sockets against a real
`faiss-operator serve`: the odd requests an HTTP library would never send."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import select
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import uvicorn
from uvicorn.server import ServerState

from faiss_operator.server import app as server_app, http_protocol
from faiss_operator.server.search_endpoint import SearchEndpoint
from faiss_operator.server.service import SearchService
from tests.server.conftest import DEADLINE_S, Server, make_artifact, running_server

MAX_BODY = 4096
IDLE_SECONDS = 1.0


@dataclasses.dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


class RawConnection:
    """A client socket that sends bytes as given and reads answers one by one."""

    def __init__(self, port: int, *, receive_buffer: int | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(DEADLINE_S)
        self.sock.connect(("127.0.0.1", port))
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        part = self.sock.recv(1 << 20)
        self.buffer += part
        return bool(part)

    def read(self, *, head_only: bool = False) -> RawResponse:
        while b"\r\n\r\n" not in self.buffer:
            if not self._fill():
                raise AssertionError(f"connection closed before an answer; got {self.buffer[:200]!r}")
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        version, status, _ = status_line.split(" ", 2)
        assert version == "HTTP/1.1", status_line
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            assert name.lower() not in headers, f"header {name} twice"
            headers[name.lower()] = value.strip()
        length = 0 if head_only else int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            if not self._fill():
                raise AssertionError("connection closed inside a body")
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return RawResponse(int(status), headers, body)

    def closed_by_server(self) -> bool:
        """Waits (up to the deadline) for the server to close; True at end of stream, False if
        something else arrives first."""
        try:
            while True:
                if self.buffer:
                    return False
                if not self._fill():
                    return True
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()


def search_request(vector: list[float] | np.ndarray, *, k: int = 3, extra: bytes = b"", version: bytes = b"1.1") -> bytes:
    body = np.asarray(vector, dtype="<f4").tobytes()
    return (b"POST /v1/search?k=%d HTTP/%s\r\nHost: t\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Length: %d\r\n%s\r\n" % (k, version, len(body), extra) + body)


def json_search_request(vector: list[float], k: int) -> bytes:
    body = json.dumps({"vector": vector, "k": k}).encode()
    return (b"POST /v1/search HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body) + body)


def get_request(path: bytes, extra: bytes = b"", version: bytes = b"1.1", method: bytes = b"GET") -> bytes:
    return b"%s %s HTTP/%s\r\nHost: t\r\n%s\r\n" % (method, path, version, extra)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    artifact = make_artifact(tmp_path_factory.mktemp("artifact"))
    with running_server(artifact, tmp_path_factory.mktemp("log") / "server.log", "--max-body-bytes", str(MAX_BODY),
                        "--keep-alive-seconds", str(IDLE_SECONDS)) as running:
        running.wait_for("/readyz", 200)
        yield running


@pytest.fixture()
def connection(server: Server) -> Iterator[RawConnection]:
    raw = RawConnection(server.port)
    yield raw
    raw.close()


VECTORS = np.random.default_rng(5).standard_normal((6, 16)).astype(np.float32)


def expected_ids(server: Server, vector: np.ndarray, k: int) -> list[str]:
    answer = server.request("POST", f"/v1/search?k={k}", vector.astype("<f4").tobytes(),
                            {"Content-Type": "application/octet-stream"})
    assert answer.status == 200
    ids: list[str] = answer.json()["results"][0]["ids"]
    return ids


def test_pipelined_requests_are_answered_in_the_order_they_came(server: Server, connection: RawConnection) -> None:
    # Searches of different k go to different batches; health, info and errors are answered by
    # other code paths and finish at other moments. All sent at once, before reading anything.
    requests = [
        search_request(VECTORS[0], k=5),
        get_request(b"/v1/info"),
        search_request(VECTORS[1], k=2),
        json_search_request(VECTORS[2].tolist(), k=4),
        search_request([1.0] * 15),  # not a whole vector: 400
        get_request(b"/healthz"),
        search_request(VECTORS[3], k=7),
        get_request(b"/nowhere"),
        search_request(VECTORS[4], k=1),
    ]
    connection.send(b"".join(requests))
    answers = [connection.read() for _ in requests]
    assert [a.status for a in answers] == [200, 200, 200, 200, 400, 200, 200, 404, 200]
    assert answers[0].json()["results"][0]["ids"] == expected_ids(server, VECTORS[0], 5)  # type: ignore[index]
    assert answers[1].json()["vectors"] == 2000  # type: ignore[index]
    assert answers[2].json()["results"][0]["ids"] == expected_ids(server, VECTORS[1], 2)  # type: ignore[index]
    assert answers[3].json()["ids"] == expected_ids(server, VECTORS[2], 4)  # type: ignore[index]
    assert "not a whole number of vectors" in answers[4].json()["error"]  # type: ignore[index]
    assert answers[5].json()["status"] == "alive"  # type: ignore[index]
    assert answers[6].json()["results"][0]["ids"] == expected_ids(server, VECTORS[3], 7)  # type: ignore[index]
    assert answers[8].json()["results"][0]["ids"] == expected_ids(server, VECTORS[4], 1)  # type: ignore[index]
    assert all("connection" not in a.headers for a in answers)  # HTTP/1.1 stays open
    connection.send(get_request(b"/healthz"))
    assert connection.read().status == 200


def test_a_request_split_into_single_bytes_is_answered(connection: RawConnection) -> None:
    for byte in search_request(VECTORS[0], k=2):
        connection.send(bytes([byte]))
    answer = connection.read()
    assert answer.status == 200 and len(answer.json()["results"][0]["ids"]) == 2  # type: ignore[index]


def test_connection_close_is_answered_with_it_then_closed(connection: RawConnection) -> None:
    connection.send(search_request(VECTORS[0], extra=b"Connection: close\r\n") + get_request(b"/healthz"))
    answer = connection.read()
    assert answer.status == 200 and answer.headers["connection"] == "close"
    assert connection.closed_by_server()  # the pipelined /healthz after it is not answered


def test_http10_closes_unless_keep_alive_is_asked(server: Server) -> None:
    plain = RawConnection(server.port)
    plain.send(search_request(VECTORS[0], version=b"1.0"))
    answer = plain.read()
    assert answer.status == 200 and answer.headers["connection"] == "close"
    assert plain.closed_by_server()
    plain.close()

    kept = RawConnection(server.port)
    for _ in range(2):
        kept.send(get_request(b"/healthz", b"Connection: keep-alive\r\n", version=b"1.0"))
        answer = kept.read()
        assert answer.status == 200 and answer.headers["connection"] == "keep-alive"
    kept.close()


def test_expect_100_continue_invites_the_body_then_answers(connection: RawConnection) -> None:
    body = VECTORS[0].astype("<f4").tobytes()
    connection.send(b"POST /v1/search?k=3 HTTP/1.1\r\nHost: t\r\nContent-Type: application/octet-stream\r\n"
                    b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
    interim = connection.read()
    assert (interim.status, interim.body) == (100, b"")
    connection.send(body)
    answer = connection.read()
    assert answer.status == 200 and len(answer.json()["results"][0]["ids"]) == 3  # type: ignore[index]


def test_expect_100_continue_with_a_chunked_body(connection: RawConnection) -> None:
    body = VECTORS[0].astype("<f4").tobytes()
    connection.send(b"POST /v1/search?k=2 HTTP/1.1\r\nHost: t\r\nContent-Type: application/octet-stream\r\n"
                    b"Expect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert connection.read().status == 100
    connection.send(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
    answer = connection.read()
    assert answer.status == 200 and len(answer.json()["results"][0]["ids"]) == 2  # type: ignore[index]


def test_expect_100_continue_over_the_limit_is_refused_without_inviting_the_body(connection: RawConnection) -> None:
    connection.send(b"POST /v1/search HTTP/1.1\r\nHost: t\r\nContent-Type: application/octet-stream\r\n"
                    b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1))
    answer = connection.read()
    assert answer.status == 413 and answer.headers["connection"] == "close"
    assert answer.json() == {"error": f"request body of {MAX_BODY + 1} bytes is larger than the limit of {MAX_BODY}"}
    assert connection.closed_by_server()


def test_an_unknown_expectation_is_refused_417(connection: RawConnection) -> None:
    connection.send(get_request(b"/healthz", b"Expect: teapot\r\n"))
    answer = connection.read()
    assert answer.status == 417 and "only 100-continue" in answer.json()["error"]  # type: ignore[index]
    assert connection.closed_by_server()


def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(connection: RawConnection) -> None:
    connection.send(b"POST /v1/search HTTP/1.1\r\nHost: t\r\nContent-Length: 999999999999\r\n\r\n")
    answer = connection.read()  # no byte of the body was sent
    assert answer.status == 413 and answer.headers["connection"] == "close"
    assert connection.closed_by_server()


def test_a_large_body_sent_anyway_still_gets_the_413_not_a_reset(connection: RawConnection) -> None:
    body = b"\0" * (8 << 20)
    sender = threading.Thread(target=lambda: _send_ignoring_errors(
        connection, b"POST /v1/search HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(body) + body))
    sender.start()
    answer = connection.read()
    sender.join(DEADLINE_S)
    assert answer.status == 413


def test_a_chunked_body_is_cut_at_the_limit(connection: RawConnection) -> None:
    chunk = b"\0" * 1024
    connection.send(b"POST /v1/search HTTP/1.1\r\nHost: t\r\nContent-Type: application/octet-stream\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n")
    for _ in range(MAX_BODY // len(chunk) + 1):
        connection.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    answer = connection.read()
    assert answer.status == 413
    assert answer.json() == {"error": f"request body is larger than the limit of {MAX_BODY} bytes"}


def test_a_chunked_body_within_the_limit_is_searched(connection: RawConnection) -> None:
    body = VECTORS[:2].astype("<f4").tobytes()
    connection.send(b"POST /v1/search?k=2 HTTP/1.1\r\nHost: t\r\nContent-Type: application/octet-stream\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n%s\r\n" % (40, body[:40])
                    + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body) - 40, body[40:]))
    answer = connection.read()
    assert answer.status == 200 and len(answer.json()["results"]) == 2  # type: ignore[arg-type]


def test_a_head_over_the_limit_is_refused_431(connection: RawConnection) -> None:
    connection.send(get_request(b"/healthz", b"X-Big: %s\r\n" % (b"a" * http_protocol.MAX_HEAD_BYTES)))
    answer = connection.read()
    assert answer.status == 431 and answer.headers["connection"] == "close"


def test_a_head_growing_without_end_is_refused_431(connection: RawConnection) -> None:
    connection.send(b"GET /healthz HTTP/1.1\r\nX-Endless: ")
    for _ in range(http_protocol.MAX_HEAD_BYTES // 1024 + 2):
        connection.send(b"a" * 1024)
    assert connection.read().status == 431


@pytest.mark.parametrize("garbage", [b"NOT HTTP AT ALL\r\n\r\n", b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
                                     b"POST /v1/search HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx",
                                     b"POST /v1/search HTTP/1.1\r\nContent-Length: -5\r\n\r\n"])
def test_malformed_http_is_answered_400_and_closed(connection: RawConnection, garbage: bytes) -> None:
    connection.send(garbage)
    answer = connection.read()
    assert answer.status == 400 and answer.headers["connection"] == "close"
    assert "malformed HTTP request" in answer.json()["error"]  # type: ignore[index]
    assert connection.closed_by_server()


def test_head_requests_get_the_headers_without_the_body(connection: RawConnection) -> None:
    connection.send(get_request(b"/healthz", method=b"HEAD") + get_request(b"/healthz"))
    head = connection.read(head_only=True)
    assert head.status == 200 and int(head.headers["content-length"]) > 0 and head.body == b""
    assert connection.read().json()["status"] == "alive"  # type: ignore[index]


def test_an_upgrade_request_is_answered_as_plain_http_then_closed(connection: RawConnection) -> None:
    connection.send(get_request(b"/healthz", b"Connection: Upgrade\r\nUpgrade: websocket\r\n") + b"\x81\x00")
    answer = connection.read()
    assert answer.status == 200 and answer.headers["connection"] == "close"
    assert connection.closed_by_server()


def test_a_client_that_half_closes_still_gets_its_answers(connection: RawConnection) -> None:
    # /v1/info first: its answer comes from a task, after the searches' answers are known.
    connection.send(get_request(b"/v1/info") + search_request(VECTORS[0], k=2) + search_request(VECTORS[1], k=3))
    connection.sock.shutdown(socket.SHUT_WR)
    info, first, second = connection.read(), connection.read(), connection.read()
    assert (info.status, first.status, second.status) == (200, 200, 200)
    assert len(second.json()["results"][0]["ids"]) == 3  # type: ignore[index]
    assert connection.closed_by_server()  # with or without "Connection: close": EOF may arrive after both answers


def test_an_idle_connection_is_closed_after_the_keep_alive_timeout(connection: RawConnection) -> None:
    connection.send(get_request(b"/healthz"))
    assert connection.read().status == 200
    started = time.monotonic()
    assert connection.closed_by_server()
    assert time.monotonic() - started >= IDLE_SECONDS * 0.9


def test_a_request_left_half_sent_is_answered_408(connection: RawConnection) -> None:
    connection.send(b"POST /v1/search HTTP/1.1\r\nHost: t\r\nContent-Length: 64\r\n\r\n" + b"\0" * 10)
    answer = connection.read()
    assert answer.status == 408 and answer.headers["connection"] == "close"
    assert connection.closed_by_server()


def test_a_client_that_does_not_read_makes_the_server_stop_reading(server: Server) -> None:
    """Back-pressure: a client pipelining large-answer searches without reading its answers fills
    the socket buffers; the server then stops reading (its write buffer over the high-water mark),
    so the client's sends block long before it could push the bound below. Nothing is lost."""
    raw = RawConnection(server.port, receive_buffer=4096)
    request = search_request(VECTORS[0], k=1000)  # ~20 kB of JSON per answer
    raw.sock.setblocking(False)
    sent = 0
    bound = 20 << 20
    while sent < bound:
        try:
            sent += raw.sock.send(request[sent % len(request):])
        except BlockingIOError:
            # Blocked: if the server still reads, the socket becomes writable again shortly.
            _, writable, _ = select.select([], [raw.sock], [], 3.0)
            if not writable:
                break
    assert sent < bound, "the server kept reading from a client that reads nothing"
    whole = sent // len(request)
    partial = sent % len(request)
    raw.sock.setblocking(True)
    raw.sock.settimeout(DEADLINE_S)
    rest = threading.Thread(target=raw.send, args=(request[partial:],)) if partial else None
    if rest is not None:  # sent while the answers are read, or it would block as well
        rest.start()
        whole += 1
    first = raw.read()
    for _ in range(whole - 1):
        assert raw.read().status == 200
    if rest is not None:
        rest.join(DEADLINE_S)
    assert first.status == 200 and first.json()["results"][0]["ids"] == expected_ids(server, VECTORS[0], 1000)  # type: ignore[index]
    raw.send(get_request(b"/healthz"))
    assert raw.read().status == 200
    raw.close()


def test_sigterm_closes_idle_connections_and_answers_busy_ones_with_connection_close(tmp_path: Path) -> None:
    artifact = make_artifact(tmp_path, index_type="Flat", count=100_000)
    # Keep-alive and drain timeouts past the test's deadline: the idle connection must close because
    # of the drain itself, not because it timed out or the process gave up waiting.
    with running_server(artifact, tmp_path / "log", "--max-batch", "4096", "--max-body-bytes", str(64 << 20),
                        "--warmup-queries", "1", "--workers", "1", "--keep-alive-seconds", str(4 * DEADLINE_S),
                        "--drain-seconds", str(4 * DEADLINE_S)) as server:
        server.wait_for("/readyz", 200)
        idle = RawConnection(server.port)
        idle.send(get_request(b"/healthz"))
        assert idle.read().status == 200
        busy = RawConnection(server.port)
        queries = np.random.default_rng(0).standard_normal((2048, 16)).astype(np.float32)
        busy.send(search_request(queries, k=50))
        deadline = time.monotonic() + DEADLINE_S
        while "faiss_requests_in_flight 1.0" not in server.request("GET", "/metrics").body.decode():
            assert time.monotonic() < deadline
        server.process.send_signal(signal.SIGTERM)
        assert idle.closed_by_server()
        answer = busy.read()
        assert answer.status == 200 and answer.headers["connection"] == "close"
        assert len(answer.json()["results"]) == 2048  # type: ignore[arg-type]
        assert busy.closed_by_server()
        assert server.process.wait(timeout=DEADLINE_S) == 0


def _send_ignoring_errors(connection: RawConnection, data: bytes) -> None:
    try:
        connection.send(data)
    except OSError:
        pass



class _RecordingTransport:
    """The transport side of one connection, in memory: what was written, read pauses and closing."""

    def __init__(self) -> None:
        self.written = b""
        self.reading = True
        self.pauses = 0
        self.closing = False

    def write(self, data: bytes) -> None:
        self.written += data

    def pause_reading(self) -> None:
        assert self.reading
        self.reading, self.pauses = False, self.pauses + 1

    def resume_reading(self) -> None:
        assert not self.reading
        self.reading = True

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str) -> object:
        return ("127.0.0.1", 1) if name in ("peername", "sockname") else None


def _unloaded_protocol(tmp_path: Path) -> tuple[http_protocol.HttpProtocol, _RecordingTransport]:
    """A connection of a server whose index is not loaded (a search is answered 503 at once,
    /healthz by a task), on a recording transport. Call on a running event loop."""
    service = SearchService(tmp_path / "not-loaded")
    endpoint = SearchEndpoint(service)
    config = uvicorn.Config(server_app.create_app(service, endpoint.tally.flush), lifespan="off")
    protocol = http_protocol.HttpProtocol(config, ServerState(), {}, endpoint=endpoint)
    transport = _RecordingTransport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    return protocol, transport


def test_reading_pauses_while_max_pipelined_answers_are_pending_and_resumes_once_half_are_written(tmp_path: Path) -> None:
    async def scenario() -> _RecordingTransport:
        protocol, transport = _unloaded_protocol(tmp_path)  # /healthz answers whatever the phase
        protocol.data_received(get_request(b"/healthz") * (http_protocol.MAX_PIPELINED + 8))
        assert not transport.reading and transport.pauses == 1
        deadline = time.monotonic() + DEADLINE_S
        while transport.written.count(b"HTTP/1.1 200") < http_protocol.MAX_PIPELINED + 8:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        return transport

    transport = asyncio.run(scenario())
    assert transport.reading and transport.pauses == 1
    assert transport.written.count(b'{"status":"alive"') == http_protocol.MAX_PIPELINED + 8


def test_end_of_input_with_an_answer_known_behind_one_still_computed_writes_both_then_closes(tmp_path: Path) -> None:
    async def scenario() -> _RecordingTransport:
        protocol, transport = _unloaded_protocol(tmp_path)
        protocol.data_received(get_request(b"/healthz") + search_request(VECTORS[0]))
        assert protocol.eof_received() is True  # keep the transport open for the answers
        deadline = time.monotonic() + DEADLINE_S
        while not transport.closing:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        return transport

    written = asyncio.run(scenario()).written
    assert written.startswith(b"HTTP/1.1 200 OK\r\n") and b"HTTP/1.1 503 Service Unavailable\r\n" in written
    assert written.count(b"connection: close") == 1 and written.index(b"connection: close") > written.index(b"503")


def test_a_body_that_already_arrived_is_not_invited_with_100_continue(connection: RawConnection) -> None:
    # Both requests in one send: the second's body is read with its head, while the first's
    # answer is still to come; `100 Continue` would be an answer to nothing the client waits for.
    body = VECTORS[1].astype("<f4").tobytes()
    connection.send(search_request(VECTORS[0], k=4)
                    + b"POST /v1/search?k=2 HTTP/1.1\r\nHost: t\r\nContent-Type: application/octet-stream\r\n"
                      b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    first, second = connection.read(), connection.read()
    assert (first.status, second.status) == (200, 200)
    assert len(second.json()["results"][0]["ids"]) == 2  # type: ignore[index]


def test_connection_close_with_expect_100_continue_invites_the_body_then_closes(server: Server, connection: RawConnection) -> None:
    body = VECTORS[0].astype("<f4").tobytes()
    connection.send(b"POST /v1/search?k=3 HTTP/1.1\r\nHost: t\r\nContent-Type: application/octet-stream\r\n"
                    b"Connection: close\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
    assert connection.read().status == 100
    connection.send(body)
    answer = connection.read()
    assert answer.status == 200 and answer.headers["connection"] == "close"
    assert answer.json()["results"][0]["ids"] == expected_ids(server, VECTORS[0], 3)  # type: ignore[index]
    assert connection.closed_by_server()


@pytest.mark.parametrize("target", [b"/v1/%73earch?k=2", b"/v1/search%3Fk=9?k=2", b"http://t/v1/search?k=2"])
def test_a_search_path_percent_encoded_or_in_absolute_form_is_the_search(
    server: Server, connection: RawConnection, target: bytes,
) -> None:
    body = VECTORS[0].astype("<f4").tobytes()
    connection.send(b"POST %s HTTP/1.1\r\nHost: t\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n"
                    % (target, len(body)) + body)
    answer = connection.read()
    if target.startswith(b"/v1/search%3F"):  # an encoded "?" is part of the path: no such route
        assert answer.status == 404 and "Not Found" in answer.json()["error"]  # type: ignore[index]
    else:
        assert answer.status == 200
        assert answer.json()["results"][0]["ids"] == expected_ids(server, VECTORS[0], 2)  # type: ignore[index]


def test_a_non_ascii_request_path_is_refused_400(connection: RawConnection) -> None:
    connection.send(b"GET /h\xc3\xa9 HTTP/1.1\r\nHost: t\r\n\r\n")
    answer = connection.read()
    assert answer.status == 400 and answer.headers["connection"] == "close"
    assert connection.closed_by_server()


@pytest.mark.parametrize("garbage", [
    b"POST /v1/search HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST /v1/search HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
    b"POST /v1/search HTTP/1.1\r\nContent-Length: 64\r\nContent-Length: 64\r\n\r\n" + b"\0" * 64,
])
def test_ambiguous_framing_is_refused_400_not_smuggled(connection: RawConnection, garbage: bytes) -> None:
    # Request smuggling: a proxy and this server must never disagree on where a request ends.
    connection.send(garbage + get_request(b"/healthz"))
    answer = connection.read()
    assert answer.status == 400 and answer.headers["connection"] == "close"
    assert connection.closed_by_server()  # the /healthz behind it is not answered


def test_many_small_pipelined_requests_in_one_read_are_all_answered_in_order(connection: RawConnection) -> None:
    count = 600  # far over MAX_PIPELINED, in one send (~60 kB)
    connection.send(b"".join(search_request(VECTORS[i % 6], k=1 + i % 5) for i in range(count)))
    for i in range(count):
        answer = connection.read()
        assert answer.status == 200 and len(answer.json()["results"][0]["ids"]) == 1 + i % 5  # type: ignore[index]


def test_a_head_request_to_the_search_is_405_without_a_body(connection: RawConnection) -> None:
    connection.send(get_request(b"/v1/search", method=b"HEAD") + get_request(b"/healthz"))
    head = connection.read(head_only=True)
    assert head.status == 405 and int(head.headers["content-length"]) > 0
    assert connection.read().json()["status"] == "alive"  # type: ignore[index]


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Searches on threads (--workers 1) over 100k vectors: a 2048-query search takes long enough
    for a later request on the same connection to be answered first."""
    artifact = make_artifact(tmp_path_factory.mktemp("artifact"), index_type="Flat", count=100_000)
    with running_server(artifact, tmp_path_factory.mktemp("log") / "server.log", "--max-batch", "4096",
                        "--max-body-bytes", str(64 << 20), "--warmup-queries", "1", "--workers", "1") as running:
        running.wait_for("/readyz", 200)
        yield running


def test_a_client_that_half_closes_gets_answers_that_finish_out_of_order(slow_server: Server) -> None:
    raw = RawConnection(slow_server.port)
    queries = np.random.default_rng(0).standard_normal((2048, 16)).astype(np.float32)
    raw.send(search_request(queries, k=50) + get_request(b"/healthz"))
    deadline = time.monotonic() + DEADLINE_S
    while "faiss_requests_in_flight 1.0" not in slow_server.request("GET", "/metrics").body.decode():
        assert time.monotonic() < deadline
    # The search is running on a thread; /healthz is answered and waits for it. Then EOF.
    raw.sock.shutdown(socket.SHUT_WR)
    search, health = raw.read(), raw.read()
    assert search.status == 200 and len(search.json()["results"]) == 2048  # type: ignore[arg-type]
    assert health.json()["status"] == "alive"  # type: ignore[index]
    assert raw.closed_by_server()
    raw.close()


def test_a_refused_client_still_sending_reads_every_answer_before_the_close(server: Server) -> None:
    """Linger: a client that does not read while it sends a large body (its receive window full
    of the answer before the refusal) still reads that answer and the 413; closing at once with
    its body unread would reset the connection and drop the answers not yet delivered."""
    raw = RawConnection(server.port, receive_buffer=4096)
    body = b"\0" * (32 << 20)
    sender = threading.Thread(target=_send_ignoring_errors, args=(raw, search_request(VECTORS[0], k=1000)
        + b"POST /v1/search HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(body) + body))
    sender.start()
    sender.join(DEADLINE_S)
    assert not sender.is_alive()
    search, refusal = raw.read(), raw.read()
    assert search.status == 200 and search.json()["results"][0]["ids"] == expected_ids(server, VECTORS[0], 1000)  # type: ignore[index]
    assert refusal.status == 413 and refusal.headers["connection"] == "close"
    assert raw.closed_by_server()
    raw.close()


def _search_count(server: Server, source: str) -> float:
    line = f'faiss_requests_total{{code="200",endpoint="search",source="{source}"}} '
    for text in server.request("GET", "/metrics").body.decode().splitlines():
        if text.startswith(line):
            return float(text[len(line):])
    return 0.0


def test_a_request_pipelined_after_connection_close_is_never_run(server: Server, connection: RawConnection) -> None:
    # The search behind the last request is sent as the operator's probe, so that its count
    # (source="probe") tells whether the server searched it although it never answered it.
    clients, probes = _search_count(server, "client"), _search_count(server, "probe")
    connection.send(search_request(VECTORS[0], extra=b"Connection: close\r\n")
                    + search_request(VECTORS[1], extra=b"X-Faiss-Probe: 1\r\n"))
    assert connection.read().headers["connection"] == "close"
    assert connection.closed_by_server()
    deadline = time.monotonic() + DEADLINE_S
    while _search_count(server, "client") < clients + 1:  # counted in the same loop turn as a probe would be
        assert time.monotonic() < deadline
    assert _search_count(server, "probe") == probes


def test_sigterm_makes_the_request_being_read_the_last_one(tmp_path: Path) -> None:
    """Drain with a request half received: it is completed and answered with `Connection: close`;
    what the client pipelined after it is not read (uvicorn's own protocol does the same)."""
    with running_server(make_artifact(tmp_path), tmp_path / "log", "--workers", "1") as server:
        server.wait_for("/readyz", 200)
        raw = RawConnection(server.port)
        raw.send(search_request(VECTORS[0], k=2))
        assert raw.read().status == 200
        request = search_request(VECTORS[1], k=3)
        raw.send(request[:-10])
        server.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + DEADLINE_S
        while True:  # uvicorn closes its listener, then calls shutdown() on each connection, in one step
            try:
                socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE_S).close()
            except (ConnectionRefusedError, ConnectionResetError):  # reset: accepted by the kernel, then the listener closed
                break
            assert time.monotonic() < deadline
        raw.send(request[-10:] + get_request(b"/healthz"))
        answer = raw.read()
        assert answer.status == 200 and answer.headers["connection"] == "close"
        assert len(answer.json()["results"][0]["ids"]) == 3  # type: ignore[index]
        assert raw.closed_by_server()  # the /healthz behind it is not answered
        assert server.process.wait(timeout=DEADLINE_S) == 0


def test_a_request_held_back_by_back_pressure_is_not_timed_out_when_reading_resumes(server: Server) -> None:
    """The client is silent because the server stopped reading: its idle time starts when reading
    resumes, not before (a 408 right after resuming would punish the client for the server's pause)."""
    raw = RawConnection(server.port, receive_buffer=4096)
    request = search_request(VECTORS[0], k=1000)  # ~20 kB of JSON per answer
    raw.send(request * 400 + request[:-10])  # ~8 MB of answers; the last request cut short: the server holds it half read
    # Let more than the idle timeout pass with the server paused: wait for another connection's idle close.
    other = RawConnection(server.port)
    other.send(get_request(b"/healthz"))
    assert other.read().status == 200 and other.closed_by_server()
    other.close()
    for _ in range(400):
        assert raw.read().status == 200
    readable, _, _ = select.select([raw.sock], [], [], IDLE_SECONDS * 0.3)
    assert not readable and not raw.buffer, "an answer (a 408) arrived for a request the client is still sending"
    raw.send(request[-10:])
    answer = raw.read()
    assert answer.status == 200 and answer.json()["results"][0]["ids"] == expected_ids(server, VECTORS[0], 1000)  # type: ignore[index]
    raw.close()


def test_trailers_after_a_chunked_body_change_nothing(server: Server, connection: RawConnection) -> None:
    # A trailer naming another Content-Type (or X-Faiss-Probe) must not change how the body is read.
    body = json.dumps({"vector": VECTORS[0].tolist(), "k": 2}).encode()
    connection.send(b"POST /v1/search HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n"
                    b"Content-Type: application/octet-stream\r\n\r\n" % (len(body), body))
    answer = connection.read()
    assert answer.status == 200 and answer.json()["ids"] == expected_ids(server, VECTORS[0], 2)  # type: ignore[index]


def test_a_trailer_growing_without_end_is_refused_431(connection: RawConnection) -> None:
    # llhttp buffers a header until it ends: an endless trailer after a chunked body would grow
    # the server's memory without bound, as an endless head would.
    connection.send(b"POST /v1/search HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\nX-Endless: ")
    sent = 0
    while not select.select([connection.sock], [], [], 0)[0]:  # the read that ends the head is not counted
        assert sent < 4 << 20, "4 MiB of one trailer and no refusal"
        connection.send(b"a" * 4096)
        sent += 4096
    answer = connection.read()
    assert answer.status == 431 and answer.headers["connection"] == "close"
    assert "chunk framing and trailers" in answer.json()["error"]  # type: ignore[index]
