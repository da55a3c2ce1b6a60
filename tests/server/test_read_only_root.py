"""`serve --workers N` on a read-only root with no writable temporary directory (a pod with
readOnlyRootFilesystem and nothing mounted at /tmp) fails with one clear line, not a traceback.
(With a writable temp directory it serves: tests/server/test_workers.py.)

The read-only root is made for real: the server runs in its own mount namespace (unshare) in
which /tmp and /var/tmp are read-only bind mounts of themselves, its working directory is under
/tmp, and TMPDIR names a directory that does not exist, so Python finds no usable temp directory.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.server.conftest import DEADLINE_S, free_port, make_artifact

READ_ONLY_TEMP = "for d in /tmp /var/tmp; do mount --bind $d $d && mount -o remount,bind,ro $d; done; exec \"$@\""


def serve_read_only(artifact: Path, cwd: Path, tmpdir: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("unshare") is None:
        pytest.fail("unshare (util-linux) is needed to make a read-only root for this test")
    argv = [sys.executable, "-m", "faiss_operator.cli", "serve", "--artifact", str(artifact),
            "--host", "127.0.0.1", "--port", str(free_port()), "--workers", "2", "--search-threads", "1"]  # fmt: skip
    return subprocess.run(
        ["unshare", "--mount", "sh", "-c", READ_ONLY_TEMP, "sh", *argv],
        cwd=cwd, env={"PATH": "/usr/bin:/bin", "TMPDIR": tmpdir}, capture_output=True, text=True,
        timeout=DEADLINE_S,
    )  # fmt: skip


def test_serve_with_workers_and_no_writable_temp_directory_fails_with_one_clear_line(tmp_path: Path) -> None:
    artifact = make_artifact(tmp_path)
    done = serve_read_only(artifact, tmp_path, "/nonexistent-tmp")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    errors = [line for line in done.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1, done.stderr
    assert errors[0].endswith(
        "Cannot serve with --workers 2: no writable temporary directory for the serving processes' metrics "
        "([Errno 2] No usable temporary directory found in ['/nonexistent-tmp', '/tmp', '/var/tmp', '/usr/tmp', "
        f"'{tmp_path}']); mount a writable volume (an emptyDir) at /tmp or set TMPDIR to a writable directory"
    ), errors[0]
