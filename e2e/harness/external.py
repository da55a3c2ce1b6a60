"""A cluster the tests are given (E2E_KUBECONFIG, e.g. kind from `make e2e-kind`) instead of the
local control plane: the few things the in-cluster stories ask of `Cluster`, through kubectl."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

import kubernetes


def kubeconfig() -> pathlib.Path | None:
    """E2E_KUBECONFIG as a path, or None when unset."""
    value = os.environ.get("E2E_KUBECONFIG")
    return pathlib.Path(value) if value else None


class ExternalCluster:
    """kubeconfig, bin_dir (where kubectl is on PATH), api_client() and container_log() of a given cluster."""

    def __init__(self, kubeconfig: pathlib.Path) -> None:
        self.kubeconfig = kubeconfig
        kubectl = shutil.which("kubectl")
        if kubectl is None:
            raise RuntimeError("E2E_KUBECONFIG is set but kubectl is not on PATH")
        self.bin_dir = pathlib.Path(kubectl).parent

    def api_client(self) -> kubernetes.client.ApiClient:
        return kubernetes.config.new_client_from_config(config_file=str(self.kubeconfig))

    def container_log(self, namespace: str, pod: str, container: str) -> str:
        result = subprocess.run([str(self.bin_dir / "kubectl"), "logs", pod, "-n", namespace, "-c", container],
                                capture_output=True, text=True, timeout=60,
                                env={**os.environ, "KUBECONFIG": str(self.kubeconfig)})
        return result.stdout + result.stderr

    def down(self) -> None:
        """Nothing: the cluster is the caller's."""
