"""The build-and-serve example of docs/pod-programs.md (moved from the README) runs as written: extracted and run by bash."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEADLINE_S = 240


def _example() -> str:
    doc = (ROOT / "docs" / "pod-programs.md").read_text()
    section = doc.split("# Pod programs", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "the Pod programs section has no ```sh block"
    return match.group(1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_readme_build_and_serve_example_runs_as_written(tmp_path: Path) -> None:
    env = {**os.environ, "PORT": str(_free_port()), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    # bash -e: a failing step fails the test; the deadline bounds the readiness loop, and the
    # session is killed whatever happens, so no server outlives the test.
    process = subprocess.Popen(["bash", "-e", "-c", _example()], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=DEADLINE_S)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, stderr[-3000:]
    answer = json.loads(stdout.strip().splitlines()[-1])
    assert len(answer["ids"]) == 3 and all(i.startswith("doc-") for i in answer["ids"])
    assert [m["id"] for m in answer["metadata"]] == answer["ids"]
    assert all(m["title"] == "document " + m["id"].removeprefix("doc-") for m in answer["metadata"])
    assert json.loads((tmp_path / "report.json").read_text())["status"] == "Succeeded"
