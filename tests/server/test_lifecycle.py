"""Readiness only after verification and warm-up; a corrupt artifact never gets ready; SIGTERM drains."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import time
from pathlib import Path

import numpy as np
import pytest

from tests.server.conftest import DEADLINE_S, make_artifact, running_server


def test_ready_only_after_warm_up(tmp_path: Path) -> None:
    artifact = make_artifact(tmp_path, index_type="Flat", count=20_000)
    with running_server(artifact, tmp_path / "log", "--warmup-queries", "15000", "--search-threads", "1") as server:
        early = server.request("GET", "/readyz")
        assert early.status == 503 and early.json()["phase"] in ("Loading", "WarmingUp")
        refused = server.search({"vector": [0.0] * 16})
        assert refused.status == 503 and "not ready" in refused.json()["error"]
        assert server.request("GET", "/healthz").status == 200
        ready = server.wait_for("/readyz", 200)
        assert ready.json()["phase"] == "Ready"
        assert server.search({"vector": [0.0] * 16}).status == 200


@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "extra file", "missing file"])
def test_corrupt_artifact_keeps_the_server_unready(tmp_path: Path, damage: str) -> None:
    artifact = make_artifact(tmp_path, index_type="Flat", count=500)
    index_file = artifact / "index.faiss"
    if damage == "flip a byte":
        data = bytearray(index_file.read_bytes())
        data[len(data) // 2] ^= 0xFF
        index_file.write_bytes(bytes(data))
    elif damage == "truncate":
        index_file.write_bytes(index_file.read_bytes()[:-10])
    elif damage == "extra file":
        (artifact / "notes.txt").write_text("hello")
    else:
        (artifact / "queries.npy").unlink()
    log = tmp_path / "log"
    with running_server(artifact, log) as server:
        # The server runs a process per CPU: /readyz may first be answered by one still Loading.
        answer = server.wait_for_phase("Failed")
        assert answer.status == 503
        reason = answer.json()["reason"]
        expected = {"flip a byte": "index.faiss is corrupt", "truncate": "index.faiss is truncated",
                    "extra file": "notes.txt", "missing file": "queries.npy is missing"}[damage]
        assert expected in reason
        deadline = time.monotonic() + DEADLINE_S  # the line is logged just after the phase is set
        while not ("staying unready" in (text := log.read_text()) and expected in text):
            assert time.monotonic() < deadline, text
            time.sleep(0.02)
        assert server.request("GET", "/healthz").status == 200
        assert server.search({"vector": [0.0] * 16}).status == 503
        assert server.request("GET", "/v1/info").status == 503


def test_missing_artifact_directory_is_unready(tmp_path: Path) -> None:
    with running_server(tmp_path / "nope", tmp_path / "log") as server:
        server.wait_for("/readyz", 503)
        server.wait_for_phase("Failed")


def test_sigterm_finishes_in_flight_requests_then_exits(tmp_path: Path) -> None:
    artifact = make_artifact(tmp_path, index_type="Flat", count=100_000)
    log = tmp_path / "log"
    # One process, so that /metrics is answered by the process whose search thread is busy.
    with running_server(artifact, log, "--max-batch", "4096", "--max-body-bytes", str(64 << 20),
                        "--warmup-queries", "1", "--workers", "1") as server:
        server.wait_for("/readyz", 200)
        queries = np.random.default_rng(0).standard_normal((2048, 16)).round(3).tolist()
        body = json.dumps({"vectors": queries, "k": 50}).encode()
        connection = socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE_S)
        connection.sendall(b"POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        deadline = time.monotonic() + DEADLINE_S
        while "faiss_requests_in_flight 1.0" not in server.request("GET", "/metrics").body.decode():
            assert time.monotonic() < deadline
        server.process.send_signal(signal.SIGTERM)
        reply = b""
        while part := connection.recv(1 << 20):
            reply += part
            if b"\r\n\r\n" in reply:
                head, _, rest = reply.partition(b"\r\n\r\n")
                length = int(next(l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")))
                if len(rest) >= length:
                    break
        connection.close()
        assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
        assert len(json.loads(reply.partition(b"\r\n\r\n")[2])["results"]) == 2048
        assert server.process.wait(timeout=DEADLINE_S) == 0
        assert "draining" in log.read_text()
        shutil.rmtree(artifact)


def test_during_the_drain_delay_readiness_fails_but_searches_are_still_answered(tmp_path: Path) -> None:
    artifact = make_artifact(tmp_path)
    with running_server(artifact, tmp_path / "log", "--drain-delay", "30") as server:
        server.wait_for("/readyz", 200)
        server.process.send_signal(signal.SIGTERM)
        draining = server.wait_for_phase("Draining")
        assert draining.status == 503
        assert server.search({"vector": [0.0] * 16, "k": 3}).status == 200
        server.process.send_signal(signal.SIGTERM)  # a second signal stops without waiting out the delay
        assert server.process.wait(timeout=DEADLINE_S) == 0


@pytest.mark.parametrize("flags", [["--drain-delay", "-1"], ["--drain-seconds", "-1"], ["--max-k", "0"], ["--max-k", "20000"], ["--search-threads", "-1"], ["--max-batch", "-1"], ["--workers", "0"]])
def test_bad_serve_flags_exit_2_before_listening(tmp_path: Path, flags: list[str]) -> None:
    from faiss_operator import cli

    assert cli.main(["serve", "--artifact", str(tmp_path), "--port", "1", *flags]) == 2
