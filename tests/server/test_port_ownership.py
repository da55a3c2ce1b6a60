"""A port is served by one `serve` only: its own listeners share it, nothing else may.

Field report (issue 19, item 8): with the default two workers (SO_REUSEPORT), a second `serve` on
the same port started without error and took a share of the traffic. Now any program already
listening there, another `serve` included, makes `serve` exit 1 with one line, before it forks.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.server.conftest import DEADLINE_S, make_artifact, running_server



def _second_serve(artifact: Path, port: int, *flags: str) -> tuple[int, list[str]]:
    """Run another `serve` on `port`; a server that starts instead of refusing is stopped and fails."""
    process = subprocess.Popen(
        [sys.executable, "-m", "faiss_operator.cli", "serve", "--artifact", str(artifact), "--host", "127.0.0.1",
         "--port", str(port), *flags],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        _, stderr = process.communicate(timeout=DEADLINE_S)
    except subprocess.TimeoutExpired:
        process.terminate()
        process.communicate(timeout=DEADLINE_S)
        raise AssertionError(f"a second serve started on port {port} instead of refusing it") from None
    return process.returncode, stderr.splitlines()


@pytest.mark.parametrize("workers", ["2", "1"])
def test_a_second_serve_on_a_served_port_is_refused_in_one_line(tmp_path: Path, workers: str) -> None:
    artifact = make_artifact(tmp_path)
    with running_server(artifact, tmp_path / "log", "--workers", "2", "--search-threads", "1") as first:
        first.wait_for("/readyz", 200)
        code, lines = _second_serve(artifact, first.port, "--workers", workers)
        assert code == 1
        assert len(lines) == 1, lines
        assert lines[0].endswith(f"Refused to serve: port {first.port} on 127.0.0.1 is in use by another program")
        assert first.process.poll() is None
        assert first.wait_for("/readyz", 200).json()["phase"] == "Ready"


def test_a_port_held_by_another_program_is_refused_with_one_worker(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, lines = _second_serve(tmp_path, port, "--workers", "1")
    assert code == 1
    assert len(lines) == 1, lines
    assert lines[0].endswith(f"Refused to serve: port {port} on 127.0.0.1 is in use by another program")
