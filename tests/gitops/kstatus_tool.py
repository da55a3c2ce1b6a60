"""Builds and runs hack/kstatus (kstatus from sigs.k8s.io/cli-utils, as Flux reads health)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "hack" / "kstatus"


def build(directory: Path) -> Path:
    """The tool built into `directory` (Go caches the build: ~1 CPU-minute the first time, 2 s after).
    Skips the test without a Go toolchain on a developer's machine; fails in CI."""
    go = shutil.which("go")
    if go is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs the Go toolchain to build hack/kstatus")
        pytest.skip("needs the Go toolchain to build hack/kstatus")
    binary = directory / "kstatus"
    run = subprocess.run([go, "build", "-o", str(binary), "."], cwd=TOOL, capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stderr
    return binary


def run(binary: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(binary), *args], input=stdin, capture_output=True, text=True, timeout=60)


def verdicts(binary: Path, bodies: list[dict[str, Any]]) -> list[dict[str, str]]:
    """kstatus's {name, status, message} for each object of `bodies`, in order."""
    done = run(binary, stdin=yaml.safe_dump_all(bodies))
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]
