"""`faiss-operator run` from the project's image under runc, started by a test on the host.

The integration stories start, kill and restart the operator themselves (e2e/harness/operator.py),
so it is not a pod: it is one container run from the image `make image` built, through the
process kubelet's own runc path (the image's unpacked root filesystem under an overlay,
e2e/harness/kubelet/runc.py), with what the chart's Deployment sets: user 65532, a read-only root
with a writable /tmp, every capability dropped, no privilege escalation, seccomp RuntimeDefault.
It shares the host's network namespace, as the host process did: it reaches the API server at the
node address of the kubeconfig (mounted read-only) and the serving pods by pod IP, and its metrics
and liveness ports are the host's.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from e2e.harness.kubelet import images, ocispec, runc

# The chart's operator pod (charts/faiss-operator/templates/deployment.yaml), as runc applies it.
USER = 65532
POD_SECURITY: dict[str, Any] = {"runAsNonRoot": True, "runAsUser": USER, "runAsGroup": USER,
                                "seccompProfile": {"type": "RuntimeDefault"}}
CONTAINER_SECURITY: dict[str, Any] = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                      "capabilities": {"drop": ["ALL"]}}
KUBECONFIG = "/etc/faiss-operator/kubeconfig"


class ImageRun:
    """One run of the operator's container: runc's process is its parent, so its exit is the run's."""

    def __init__(self, handle: runc.Handle) -> None:
        self.handle = handle
        self._finished = False

    @property
    def pid(self) -> int | None:
        """The host pid of the operator's process (the container's init)."""
        return self.handle.container_pid

    def alive(self) -> bool:
        return self.handle.popen.poll() is None

    def exit_code(self) -> int | None:
        return self.handle.popen.poll()

    def kill(self) -> None:
        """SIGKILL to the container's process (runc cannot forward one sent to itself)."""
        self.handle.kill(signal.SIGKILL)
        self._wait(10)

    def stop(self, grace_seconds: float) -> None:
        """SIGTERM, then SIGKILL after the grace period; removes the container. Idempotent."""
        if self.alive():
            self.handle.kill(signal.SIGTERM)
            if not self._wait(grace_seconds):
                self.handle.kill(signal.SIGKILL)
                self._wait(10)
        self._finish()

    def _wait(self, seconds: float) -> bool:
        try:
            self.handle.popen.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return False
        self._finish()
        return True

    def _finish(self) -> None:
        if not self._finished and not self.alive():
            self._finished = True
            self.handle.finish()


def start(*, image: str, args: Sequence[str], env: Mapping[str, str], kubeconfig: pathlib.Path,
          run_dir: pathlib.Path, log: pathlib.Path) -> ImageRun:
    """Start `faiss-operator <args>` from `image`; raises images.ImageNotPresent when it is not
    built, ocispec.ConfigError when runc would be given what a kubelet refuses."""
    store = images.Store()
    found = store.get(image)
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / "tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    os.chown(tmp, USER, USER)
    config = run_dir / "kubeconfig"  # the cluster's is root's 0600: a copy the operator's user reads
    shutil.copyfile(kubeconfig, config)
    config.chmod(0o644)
    container_id = f"operator-{uuid.uuid4().hex[:12]}"
    pod = {"metadata": {"name": "faiss-operator", "namespace": "host", "uid": container_id},
           "spec": {"securityContext": POD_SECURITY}}
    container = {"name": "operator", "image": image, "args": list(args), "securityContext": CONTAINER_SECURITY}
    run = ocispec.Run(pod=pod, container=container, image=found.config, rootfs="",
                      mounts=(ocispec.Mount(str(config), KUBECONFIG, True), ocispec.Mount(str(tmp), "/tmp")),
                      env=tuple({**env, "KUBECONFIG": KUBECONFIG}.items()),
                      argv=tuple(ocispec.argv(container, found.config)), cgroups_path="",
                      image_user_ids=store.user_ids(found))
    with log.open("ab") as out:
        handle = runc.start(run=run, image_layers=found.layers, bundle=run_dir / "bundle",
                            container_id=container_id, log=out)
    return ImageRun(handle)
