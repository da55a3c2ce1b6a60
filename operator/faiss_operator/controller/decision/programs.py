"""What the controller decides about the pod programs beyond their flags: how many serving
processes a container's CPU allows, the serving pods' grace period, and the command that removes
an artifact. The flags themselves are spelled once in contract/pod_args.py.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from faiss_operator.contract import pod_args

# The drain a serving pod is told to do (pod_args.ServeArgs), with a margin before SIGKILL.
TERMINATION_GRACE_SECONDS = pod_args.DRAIN_DELAY_SECONDS + pod_args.DRAIN_SECONDS + 5


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


# s3:// artifacts: built in this scratch directory (an emptyDir) before the upload, and downloaded
# by the serving pods' init step to this node-local directory (an emptyDir) that `serve` maps.
SCRATCH_PATH = "/var/lib/faiss-operator/scratch"
LOCAL_ARTIFACT_ROOT = "/var/lib/faiss-operator/artifact"
LOCAL_ARTIFACT_PATH = f"{LOCAL_ARTIFACT_ROOT}/current"
DOWNLOAD_DEADLINE_SECONDS = 1800


def remove_args(path: str) -> list[str]:
    """Delete an artifact directory with the image's Python (no shell needed)."""
    return ["python", "-c", "import shutil, sys; shutil.rmtree(sys.argv[1], ignore_errors=True)", path]
