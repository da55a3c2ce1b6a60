"""`serve --workers N`: N processes on one port, ready only together, drained together by SIGTERM."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np

from faiss_operator.index import FAISSIndex
from tests.server.conftest import DEADLINE_S, make_artifact, running_server


def children(pid: int) -> set[int]:
    return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def test_workers_share_the_port_and_answer_alike(tmp_path: Path) -> None:
    artifact = make_artifact(tmp_path)
    with running_server(artifact, tmp_path / "log", "--workers", "2", "--search-threads", "1") as server:
        server.wait_for("/readyz", 200)
        assert len(children(server.process.pid)) == 2
        index = FAISSIndex.load(artifact)
        queries = np.load(artifact / "queries.npy")[:30]
        expected = [e.ids for e in index.search(queries, k=5)]
        # urllib opens a new connection per request, so the kernel spreads them over both processes.
        got = [server.search({"vector": q.tolist(), "k": 5}).json()["ids"] for q in queries]
        assert got == expected
        for pid in children(server.process.pid):
            os.kill(pid, 0)  # both still alive


def test_pod_is_unready_until_every_worker_is(tmp_path: Path) -> None:
    artifact = make_artifact(tmp_path, index_type="Flat", count=20_000)
    with running_server(artifact, tmp_path / "log", "--workers", "2", "--search-threads", "1",
                        "--warmup-queries", "15000") as server:
        answers = []
        deadline = time.monotonic() + DEADLINE_S
        while (answer := server.request("GET", "/readyz")).status != 200:
            answers.append(answer.json())
            assert time.monotonic() < deadline, answers[-1:]
            time.sleep(0.01)
        assert answers, "the pod was ready before any probe saw it loading"
        assert all(a["ready"] is False for a in answers)
        # Once any process says ready, every process is: no probe or search lands on one still warming up.
        for _ in range(20):
            assert server.request("GET", "/readyz").status == 200
            assert server.search({"vector": [0.0] * 16}).status == 200


def test_sigterm_stops_every_worker_and_exits_0(tmp_path: Path) -> None:
    artifact = make_artifact(tmp_path)
    log = tmp_path / "log"
    with running_server(artifact, log, "--workers", "2", "--search-threads", "1") as server:
        server.wait_for("/readyz", 200)
        workers = children(server.process.pid)
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=DEADLINE_S) == 0
        for pid in workers:
            assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_a_worker_dying_takes_the_pod_down(tmp_path: Path) -> None:
    artifact = make_artifact(tmp_path)
    with running_server(artifact, tmp_path / "log", "--workers", "2", "--search-threads", "1") as server:
        server.wait_for("/readyz", 200)
        os.kill(min(children(server.process.pid)), signal.SIGKILL)
        assert server.process.wait(timeout=DEADLINE_S) == 1


def test_port_in_use_fails_the_pod_with_the_reason(tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys

    with socket.socket() as taken:  # a plain listener without SO_REUSEPORT: the workers cannot join it
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "faiss_operator.cli", "serve", "--artifact", str(tmp_path), "--host", "127.0.0.1",
             "--port", str(port), "--workers", "2"],
            capture_output=True, text=True, timeout=DEADLINE_S,
        )
    assert result.returncode == 1
    assert "Address already in use" in result.stderr and "Serving process failed to start" in result.stderr
