"""Drive the server with wrk (a C load generator) instead of the Python one, when it is installed.

The benchmark shares two cores between client and server; the Python generator costs far more
CPU per request than wrk, so it takes cycles the server would otherwise have. wrk runs for a
fixed duration (not a fixed count) on one thread; `serving_wrk.lua` cycles through the
pre-encoded bodies and prints its results as one JSON line.
"""

from __future__ import annotations

import dataclasses
import json
import resource
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "serving_wrk.lua"


@dataclasses.dataclass(frozen=True)
class WrkResult:
    concurrency: int
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    client_cpu_seconds: float  # wrk's own CPU over the measured run
    server_cpu_seconds: float  # the server's, from `server_cpu`, over the same run

    @property
    def qps(self) -> float:
        return self.requests / self.seconds


def available() -> bool:
    return shutil.which("wrk") is not None


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(
    port: int, bodies: Sequence[bytes], *, content_type: str, path: str, concurrency: int, seconds: int,
    server_cpu: Callable[[], float],
) -> WrkResult:
    binary = content_type == "application/octet-stream"
    with tempfile.NamedTemporaryFile("w", suffix=".bodies") as listing:
        for body in bodies:
            listing.write((body.hex() if binary else body.decode()) + "\n")
        listing.flush()
        env = {"WRK_BODIES": listing.name, "WRK_CONTENT_TYPE": content_type, "WRK_PATH": path, "PATH": "/usr/bin:/bin"}
        # A short warm-up run first, so that connection set-up and the first slow queries are not measured.
        for duration in (1, seconds):
            client_before, server_before = _children_cpu(), server_cpu()
            completed = subprocess.run(
                ["wrk", "-t1", f"-c{concurrency}", f"-d{duration}s", "--timeout", "10s", "-s", str(SCRIPT),
                 f"http://127.0.0.1:{port}"],
                env=env, capture_output=True, text=True, check=True,
            )
            client, server = _children_cpu() - client_before, server_cpu() - server_before
    line = [text for text in completed.stdout.splitlines() if text.startswith("{")][-1]
    result = json.loads(line)
    return WrkResult(
        concurrency=concurrency, requests=result["requests"], seconds=result["duration_us"] / 1e6,
        p50_ms=result["p50_us"] / 1000.0, p99_ms=result["p99_us"] / 1000.0,
        non_2xx=result["non2xx"], socket_errors=result["socket_errors"],
        client_cpu_seconds=client, server_cpu_seconds=server,
    )
