"""One run of a container from an image under runc: the bundle, the run, its signals, its end.

The bundle's root is an overlay: the image's layers (shared by every run, never written) below,
the run's own directory above, so a writable root costs nothing and a
read-only one is runc's `root.readonly`. `runc run --keep` stays the container's parent, so its
exit status is the container's (128+signal when killed) and the container's cgroup outlives
the process long enough to read whether the memory limit killed it (memory.oom_control's
oom_kill in cgroup v1, memory.events' oom_kill in v2): that is the pod status' `OOMKilled`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import signal
import subprocess
from collections.abc import Sequence
from typing import IO

from e2e.harness.kubelet import ocispec

RUNC_ROOT = pathlib.Path("/run/faiss-operator/runc")
CGROUP_ROOT = pathlib.Path("/sys/fs/cgroup")
CGROUP_PARENT = "/faiss-kubelet"
SIGNAL_NAMES = {signal.SIGTERM: "TERM", signal.SIGKILL: "KILL", signal.SIGINT: "INT"}


def _runc(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["runc", "--root", str(RUNC_ROOT), *args], capture_output=True, check=False, timeout=60)


def container_id(pod_key: str, container: str) -> str:
    """runc's id of a container: the pod's uid (the last part of layout.pod_key) and its name."""
    return f"{pod_key.rsplit('_', 1)[-1]}-{container}"


def remove_leftover(pod_key: str, container: str, bundle: pathlib.Path) -> None:
    """What a kubelet that died without stopping its pods left: the container (killed), its runc
    state and cgroup, its root's overlay mount."""
    _runc("delete", "--force", container_id(pod_key, container))
    _unmount(bundle / "rootfs")


def cgroups_path(container_id: str) -> str:
    return f"{CGROUP_PARENT}/{container_id}"


def oom_killed(path: str) -> bool:
    """Whether the kernel's OOM killer killed a process of the cgroup at `path` (v1 or v2)."""
    for control, key in ((CGROUP_ROOT / "memory" / path.lstrip("/") / "memory.oom_control", "oom_kill"),
                         (CGROUP_ROOT / path.lstrip("/") / "memory.events", "oom_kill")):
        try:
            lines = control.read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            name, _, value = line.partition(" ")
            if name == key and int(value) > 0:
                return True
    return False


def _mount_overlay(lower: Sequence[pathlib.Path], run_dir: pathlib.Path) -> pathlib.Path:
    upper, work, merged = run_dir / "upper", run_dir / "work", run_dir / "rootfs"
    for d in (upper, work, merged):
        d.mkdir(parents=True, exist_ok=True)
    lowerdir = ":".join(str(d) for d in lower)
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={lowerdir},upperdir={upper},workdir={work}", str(merged)],
                   check=True, capture_output=True, timeout=60)
    return merged


def _unmount(path: pathlib.Path) -> None:
    if os.path.ismount(path):
        subprocess.run(["umount", "--lazy", str(path)], check=False, capture_output=True, timeout=60)


@dataclasses.dataclass
class Handle:
    """A started run: runc's process (the container's parent) and where its pieces are."""

    container_id: str
    bundle: pathlib.Path
    popen: subprocess.Popen[bytes]

    @property
    def container_pid(self) -> int | None:
        try:
            return int((self.bundle / "pid").read_text())
        except (OSError, ValueError):
            return None

    def kill(self, sig: int) -> None:
        _runc("kill", self.container_id, SIGNAL_NAMES.get(signal.Signals(sig), str(int(sig))))

    def exec_argv(self, command: list[str]) -> list[str]:
        """A command run in the container as its own process is (`runc exec`)."""
        return ["runc", "--root", str(RUNC_ROOT), "exec", self.container_id, *command]

    def finish(self) -> bool:
        """After runc has exited: whether the memory limit killed the container; cleans everything."""
        killed = oom_killed(cgroups_path(self.container_id))
        _runc("delete", "--force", self.container_id)
        _unmount(self.bundle / "rootfs")
        return killed


def start(*, run: ocispec.Run, image_layers: Sequence[pathlib.Path], bundle: pathlib.Path, container_id: str,
          log: IO[bytes]) -> Handle:
    """Writes the bundle (overlay root on `image_layers`, top first; config.json) and starts
    `runc run` in the foreground."""
    _runc("delete", "--force", container_id)  # what a crashed kubelet left behind
    _unmount(bundle / "rootfs")
    if bundle.exists():
        subprocess.run(["rm", "-rf", "--one-file-system", str(bundle)], check=False, timeout=120)
    rootfs = _mount_overlay(image_layers, bundle)
    config = ocispec.spec(dataclasses.replace(run, rootfs=str(rootfs), cgroups_path=cgroups_path(container_id)))
    (bundle / "config.json").write_text(json.dumps(config, indent=1))
    RUNC_ROOT.mkdir(parents=True, exist_ok=True)
    popen = subprocess.Popen(
        ["runc", "--root", str(RUNC_ROOT), "run", "--keep", "--bundle", str(bundle),
         "--pid-file", str(bundle / "pid"), container_id],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    return Handle(container_id=container_id, bundle=bundle, popen=popen)
