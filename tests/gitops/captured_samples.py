"""FaissIndex objects captured from the real operator, with the health each must get.

`make demo` ran the chart's operator on a local cluster; at each new (phase, rollout mode, pause)
of the FaissIndex `alerts` the object was read from the API server and kept with only name,
namespace and generation in its metadata (`python -m e2e.demo up --capture-dir DIR` writes them;
e2e/demo/capture.py). The copies live beside the
generated samples as `testdata/captured_<name>.yaml`; `tests.gitops.health_samples.write()` lists
them in `health_test.yaml` too, and the Argo CD and kstatus tests judge them like the others.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from e2e.demo.capture import trim
from tests.gitops.health_samples import ARGOCD, TESTDATA, Sample

__all__ = ["CAPTURED", "FIXED_MESSAGES", "PREFIX", "path", "trim"]

PREFIX = "captured_"


def _load(name: str) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load((TESTDATA / f"{PREFIX}{name}.yaml").read_text())
    return body


def _sample(name: str, argocd: str, deciding: str | None, kstatus: str) -> Sample:
    return Sample(lambda: _load(name), argocd, deciding, kstatus)


# name -> what Argo CD must show (and the condition whose message it shows) and what kstatus computes.
CAPTURED: dict[str, Sample] = {
    "progressing_firstBuild": _sample("progressing_firstBuild", "Progressing", "Reconciling", "InProgress"),
    "progressing_firstDeploy": _sample("progressing_firstDeploy", "Progressing", "Reconciling", "InProgress"),
    "healthy_serving": _sample("healthy_serving", "Healthy", "Ready", "Current"),
    # Read right after `kubectl apply` of the HNSW spec, before the operator observed it.
    "progressing_specNotObserved": _sample("progressing_specNotObserved", "Progressing", None, "InProgress"),
    "progressing_canaryStep": _sample("progressing_canaryStep", "Progressing", "Reconciling", "InProgress"),
    "suspended_awaitingPromotion": _sample("suspended_awaitingPromotion", "Suspended", "Progressing", "InProgress"),
    "progressing_rollingBack": _sample("progressing_rollingBack", "Progressing", "Reconciling", "InProgress"),
    # After faiss.dev/rollback: the spec still asks for the revision rolled back, so Stalled.
    "degraded_rolledBackByAdmin": _sample("degraded_rolledBackByAdmin", "Degraded", "Stalled", "Failed"),
}
# Argo CD's message where no condition decides (the check's own text).
FIXED_MESSAGES = {"progressing_specNotObserved": "Waiting for the operator to observe generation 2"}


def path(name: str, directory: Path = ARGOCD) -> Path:
    return directory / "testdata" / f"{PREFIX}{name}.yaml"
