"""A real `faiss-operator serve` process on a loopback port, over an artifact built for the test."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from faiss_operator.builder import pipeline

DIMENSION = 16
COUNT = 2000
DEADLINE_S = 60.0


def make_artifact(directory: Path, *, index_type: str = "HNSW", count: int = COUNT, config: dict[str, Any] | None = None) -> Path:
    rng = np.random.default_rng(11)
    data = rng.standard_normal((count, DIMENSION)).astype(np.float32)
    np.save(directory / "v.npy", data)
    (directory / "ids.txt").write_text("".join(f"doc-{i}\n" for i in range(count)))
    (directory / "meta.jsonl").write_text("".join(json.dumps({"id": f"doc-{i}", "n": i}) + "\n" for i in range(count)))
    out = directory / "artifact"
    pipeline.build(pipeline.BuildRequest(
        source=str(directory / "v.npy"), ids=str(directory / "ids.txt"), metadata=str(directory / "meta.jsonl"),
        out=out, index_type=index_type, config=config, eval_queries=50, revision="rev-test", env={},
    ))
    return out


@dataclasses.dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclasses.dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> Response:
        request = urllib.request.Request(self.url + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return Response(answer.status, answer.read(), dict(answer.headers))
        except urllib.error.HTTPError as error:
            return Response(error.code, error.read(), dict(error.headers))

    def search(self, document: Any) -> Response:
        return self.request("POST", "/v1/search", json.dumps(document).encode(), {"Content-Type": "application/json"})

    def wait_for(self, path: str, status: int, deadline_s: float = DEADLINE_S) -> Response:
        deadline = time.monotonic() + deadline_s
        last: Response | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited with {self.process.returncode}: {self.log.read_text()}")
            with contextlib.suppress(OSError):
                last = self.request("GET", path)
                if last.status == status:
                    return last
            time.sleep(0.02)
        raise AssertionError(f"{path} did not answer {status} within {deadline_s}s (last: {last})")


    def wait_for_phase(self, phase: str, deadline_s: float = DEADLINE_S) -> Response:
        """/readyz once it reports `phase` (Loading, WarmingUp, Ready, Failed, Draining)."""
        deadline = time.monotonic() + deadline_s
        while True:
            answer = self.request("GET", "/readyz")
            if answer.json()["phase"] == phase:
                return answer
            assert time.monotonic() < deadline, f"phase {phase} not reached within {deadline_s}s: {self.log.read_text()}"
            time.sleep(0.02)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_server(artifact: Path, log: Path, *extra: str, new_session: bool = False) -> Iterator[Server]:
    """`new_session`: the server leads its own process group, as a container's processes are
    signalled together by a kubelet that kills the group (the process kubelet does)."""
    port = free_port()
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "faiss_operator.cli", "serve", "--artifact", str(artifact),
             "--host", "127.0.0.1", "--port", str(port), *extra],
            stdout=output, stderr=subprocess.STDOUT, start_new_session=new_session,
        )
    server = Server(process, port, log)
    try:
        server.wait_for("/healthz", 200)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=DEADLINE_S)


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_artifact(tmp_path_factory.mktemp("artifact"))


@pytest.fixture(scope="module")
def server(artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(artifact, tmp_path_factory.mktemp("log") / "server.log", "--max-k", "100", "--max-batch", "64",
                        "--max-body-bytes", "200000") as running:
        running.wait_for("/readyz", 200)
        yield running


from tests.s3_store import bucket, object_store, private_object_store, s3_env  # noqa: E402,F401  (fixtures)
