"""The chart installed with the helm the project builds, the operator running as its pod.

`install` is what a user types (`helm install ... -f values.yaml --wait`), with values for the
local cluster: the image `faiss-operator:dev` that `make image` built (the process kubelet runs
it under runc; under its `process` runtime, `faiss-operator:*` maps to the repository's
`faiss-operator` program) and short analysis timings.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import shutil
import subprocess
import tempfile
from typing import Any

import yaml
from kubernetes import client

from e2e.harness import paths

CHART = paths.REPO_ROOT / "charts" / "faiss-operator"
# The image `make image` builds, which the local cluster's pods run from (e2e/harness/kubelet/).
LOCAL_IMAGE = {"repository": "faiss-operator", "tag": "dev", "pullPolicy": "Never"}


class ChartError(RuntimeError):
    """helm exited non-zero; the message has the command and helm's output."""


@dataclasses.dataclass(frozen=True)
class Release:
    name: str
    namespace: str
    kubeconfig: pathlib.Path

    @property
    def fullname(self) -> str:
        """The chart's object names (its helper: the release name + "-faiss-operator" unless it has it)."""
        return self.name if "faiss-operator" in self.name else f"{self.name}-faiss-operator"

    def operator_pod(self, api: client.ApiClient) -> client.V1Pod | None:
        """The operator's pod not being deleted, or None."""
        pods = client.CoreV1Api(api).list_namespaced_pod(
            self.namespace, label_selector=f"app.kubernetes.io/instance={self.name}").items
        live = [p for p in pods if p.metadata.deletion_timestamp is None]
        return live[0] if live else None


def helm(*argv: str, kubeconfig: pathlib.Path, timeout: float = 300.0) -> str:
    """Run the built helm; its stdout, or ChartError with the command and output."""
    binary = paths.bin_dir() / "helm"
    if not binary.is_file() and shutil.which("helm"):  # a user's helm (make e2e-kind)
        binary = pathlib.Path(str(shutil.which("helm")))
    if not binary.is_file():
        raise ChartError(f"{binary} is missing: `make k8s` (hack/build-k8s.sh) builds helm with the control plane")
    home = pathlib.Path(tempfile.gettempdir()) / "faiss-operator-helm"
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HELM_CONFIG_HOME": str(home / "config"),
           "HELM_CACHE_HOME": str(home / "cache"), "HELM_DATA_HOME": str(home / "data")}
    result = subprocess.run([str(binary), *argv], capture_output=True, text=True, timeout=timeout, env=env)
    if result.returncode != 0:
        raise ChartError(f"`helm {' '.join(argv)}` exited {result.returncode}: {(result.stderr or result.stdout).strip()}")
    return result.stdout


def local_values(*, watch_namespaces: list[str], analysis_interval: int = 1, **extra: Any) -> dict[str, Any]:
    """Values for the local cluster: the process kubelet's image, the namespaces watched, short timings."""
    values: dict[str, Any] = {"image": dict(LOCAL_IMAGE), "watchNamespaces": list(watch_namespaces),
                              "operator": {"analysisIntervalSeconds": analysis_interval,
                                           "analysisTimeoutSeconds": 15}}
    values.update(extra)
    return values


def install(release: Release, values: dict[str, Any], *, timeout_seconds: int = 240) -> str:
    """`helm install <name> charts/faiss-operator -n <namespace> --create-namespace -f <values> --wait`:
    returns when the operator's Deployment is available; ChartError otherwise."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        yaml.safe_dump(values, handle)
    try:
        return helm("install", release.name, str(CHART), "-n", release.namespace, "--create-namespace",
                    "-f", handle.name, "--wait", f"--timeout={timeout_seconds}s",
                    kubeconfig=release.kubeconfig, timeout=timeout_seconds + 30)
    finally:
        pathlib.Path(handle.name).unlink(missing_ok=True)


def uninstall(release: Release) -> None:
    """`helm uninstall`, a no-op when the release is not there."""
    helm("uninstall", release.name, "-n", release.namespace, "--ignore-not-found", "--wait",
         kubeconfig=release.kubeconfig)
