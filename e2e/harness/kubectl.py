"""kubectl from the control-plane build, against one cluster's kubeconfig: what a user types."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
from typing import Any

import yaml

from e2e.harness import paths


class KubectlError(RuntimeError):
    """kubectl exited non-zero; the message has the command, its exit code and its stderr."""

    def __init__(self, argv: list[str], result: subprocess.CompletedProcess[str]) -> None:
        self.returncode = result.returncode
        self.stdout = result.stdout
        self.stderr = result.stderr
        super().__init__(f"`kubectl {' '.join(argv)}` exited {result.returncode}: {result.stderr.strip()}")


class Kubectl:
    """`kubectl` with KUBECONFIG set; `binary` defaults to the one hack/build-k8s.sh built."""

    def __init__(self, kubeconfig: pathlib.Path, *, binary: pathlib.Path | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.binary = binary or paths.bin_dir() / "kubectl"

    def run(self, *argv: str, stdin: str | None = None, timeout: float = 60.0,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run kubectl; raises KubectlError on a non-zero exit when `check`."""
        result = subprocess.run([str(self.binary), *argv], input=stdin, capture_output=True, text=True,
                                timeout=timeout, env={**os.environ, "KUBECONFIG": str(self.kubeconfig)})
        if check and result.returncode != 0:
            raise KubectlError(list(argv), result)
        return result

    def apply(self, manifest: dict[str, Any], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        """`kubectl apply -f -` of one object (client-side apply, as most users and GitOps tools do)."""
        return self.run("apply", "-f", "-", stdin=yaml.safe_dump(manifest), check=check)

    def get_json(self, *argv: str) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(self.run("get", *argv, "-o", "json").stdout)
        return out
