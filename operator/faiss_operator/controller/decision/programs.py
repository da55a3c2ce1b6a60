"""The command lines of the two pod programs, in one place.

The build Job runs `faiss-operator build` and the serving pods run `faiss-operator serve`
(faiss_operator.builder.command and faiss_operator.server.command). Every flag the controller
passes is spelled here, so aligning with those programs means reading this one file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from faiss_operator.contract import build_report

PROGRAM = "faiss-operator"
# On SIGTERM a serving pod keeps answering (unready) while its endpoint is removed, then finishes
# in-flight requests; the pod's grace period covers both with a margin before SIGKILL.
DRAIN_DELAY_SECONDS = 5
DRAIN_SECONDS = 20
TERMINATION_GRACE_SECONDS = DRAIN_DELAY_SECONDS + DRAIN_SECONDS + 5


def build_args(
    *,
    source: str,
    out: str,
    index_type: str,
    config: Mapping[str, Any],
    dimension: int,
    metric: str,
    normalize: bool,
    k: int,
    queries: int,
    ids: str | None = None,
    metadata: str | None = None,
    revision: str | None = None,
) -> list[str]:
    """`faiss-operator build ...`: build, evaluate, write the artifact and the JSON report.

    `--overwrite`: a retried Job (after a pod was killed between writing the artifact and
    exiting, or a `retry` annotation) rebuilds into the same path, replacing it atomically.
    """
    args = [
        PROGRAM, "build",
        "--source", source,
        "--out", out,
        "--index-type", index_type,
        "--config", json.dumps(dict(config), sort_keys=True, separators=(",", ":")),
        "--dimension", str(dimension),
        "--metric", metric,
        "--k", str(k),
        "--eval-queries", str(queries),
        "--termination-log", build_report.TERMINATION_LOG,
        "--overwrite",
    ]  # fmt: skip
    if normalize:
        args.append("--normalize")
    if ids is not None:
        args += ["--ids", ids]
    if metadata is not None:
        args += ["--metadata", metadata]
    if revision is not None:
        args += ["--revision", revision]
    return args


def serve_args(
    *, artifact: str, port: int, search_params: Mapping[str, Any], revision: str, workers: int | None = None,
) -> list[str]:
    """`faiss-operator serve ...`: load and verify the artifact, then answer on `port` with
    `workers` processes (None: serve's own default, the CPUs its cgroup allows)."""
    args = [
        PROGRAM, "serve", "--artifact", artifact, "--port", str(port), "--revision", revision,
        "--drain-delay", str(DRAIN_DELAY_SECONDS), "--drain-seconds", str(DRAIN_SECONDS),
    ]  # fmt: skip
    if workers is not None:
        args += ["--workers", str(workers)]
    if search_params:
        args += ["--search-params", json.dumps(dict(search_params), sort_keys=True, separators=(",", ":"))]
    return args


def serving_workers(resources: Mapping[str, Mapping[str, Any]] | None) -> int | None:
    """One serving process per CPU of the container: its CPU limit, else its CPU request, rounded
    up (500m -> 1, 2 -> 2, "1.5" -> 2); None when neither is set or readable."""
    for kind in ("limits", "requests"):
        cpu = ((resources or {}).get(kind) or {}).get("cpu")
        try:
            cores = int(str(cpu)[:-1]) / 1000 if str(cpu).endswith("m") else float(str(cpu))
        except ValueError:
            continue
        if cores > 0:
            return max(1, math.ceil(cores))
    return None


def remove_args(path: str) -> list[str]:
    """Delete an artifact directory with the image's Python (no shell needed)."""
    return ["python", "-c", "import shutil, sys; shutil.rmtree(sys.argv[1], ignore_errors=True)", path]
