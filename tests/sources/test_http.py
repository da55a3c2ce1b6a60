"""Downloads against a real HTTP server on a loopback port that fails on purpose."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from faiss_operator.sources import errors, http as downloads

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


class _Behaviour:
    def __init__(self) -> None:
        self.failures_left = 0
        self.failure_status = 503
        self.truncate_first = False
        self.hide_length = False
        self.requests = 0


@pytest.fixture
def server() -> Iterator[tuple[str, _Behaviour]]:
    behaviour = _Behaviour()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            behaviour.requests += 1
            if self.path.startswith("/missing"):
                self.send_error(404, "Not Found")
                return
            if behaviour.failures_left:
                behaviour.failures_left -= 1
                self.send_error(behaviour.failure_status)
                return
            self.send_response(200)
            if not behaviour.hide_length:
                self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            if behaviour.truncate_first:
                behaviour.truncate_first = False
                self.wfile.write(PAYLOAD[:1000])
                self.close_connection = True
                return
            self.wfile.write(PAYLOAD)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", behaviour
    httpd.shutdown()
    httpd.server_close()


NO_WAIT = downloads.DownloadPolicy(attempts=3, backoff_seconds=0.0, timeout_seconds=10)


def test_download_streams_to_the_destination(tmp_path: Path, server: tuple[str, _Behaviour]) -> None:
    url, _ = server
    assert downloads.download(f"{url}/v.npy", tmp_path / "v.npy", policy=NO_WAIT).read_bytes() == PAYLOAD


def test_server_errors_and_truncation_are_retried(tmp_path: Path, server: tuple[str, _Behaviour]) -> None:
    url, behaviour = server
    behaviour.failures_left = 1
    behaviour.truncate_first = True
    delays: list[float] = []
    policy = downloads.DownloadPolicy(attempts=3, backoff_seconds=0.25)
    assert downloads.download(f"{url}/v.npy", tmp_path / "v.npy", policy=policy, sleep=delays.append).read_bytes() == PAYLOAD
    assert behaviour.requests == 3 and delays == [0.25, 0.5]


def test_retries_give_up_with_the_last_error(tmp_path: Path, server: tuple[str, _Behaviour]) -> None:
    url, behaviour = server
    behaviour.failures_left = 10
    with pytest.raises(errors.SourceFetchError, match="after 3 attempts: HTTP 503"):
        downloads.download(f"{url}/v.npy", tmp_path / "v.npy", policy=NO_WAIT)
    assert not (tmp_path / "v.npy").exists()


def test_not_found_is_not_retried(tmp_path: Path, server: tuple[str, _Behaviour]) -> None:
    url, behaviour = server
    with pytest.raises(errors.SourceFetchError, match="HTTP 404"):
        downloads.download(f"{url}/missing.npy", tmp_path / "v.npy", policy=NO_WAIT)
    assert behaviour.requests == 1


@pytest.mark.parametrize("hide_length", [False, True])
def test_size_limit_from_header_or_while_streaming(
    tmp_path: Path, server: tuple[str, _Behaviour], hide_length: bool
) -> None:
    url, behaviour = server
    behaviour.hide_length = hide_length
    policy = downloads.DownloadPolicy(max_bytes=len(PAYLOAD) - 1, attempts=3, backoff_seconds=0.0)
    with pytest.raises(errors.SourceTooLargeError, match=f"limit of {len(PAYLOAD) - 1} bytes"):
        downloads.download(f"{url}/v.npy", tmp_path / "v.npy", policy=policy)
    assert behaviour.requests == 1 and not (tmp_path / "v.npy").exists()


def test_connection_refused_is_a_fetch_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(errors.SourceFetchError, match="after 3 attempts"):
        downloads.download(f"http://127.0.0.1:{port}/v.npy", tmp_path / "v.npy", policy=NO_WAIT)


def test_a_full_disk_is_not_retried_as_a_network_error(tmp_path: Path, server: tuple[str, _Behaviour]) -> None:
    url, behaviour = server
    destination = tmp_path / "v.npy"
    destination.symlink_to("/dev/full")  # every write fails with ENOSPC; unlinking removes only the link
    with pytest.raises(errors.DownloadWriteError, match="No space left on device"):
        downloads.download(f"{url}/v.npy", destination, policy=NO_WAIT)
    assert behaviour.requests == 1
    assert Path("/dev/full").exists()
