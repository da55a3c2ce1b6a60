"""Enter a container's filesystem view, then exec its command (run as `python -I -S nsinit.py SPEC`).

Standalone on purpose (stdlib only, no package imports): it runs between fork and exec of every
container. Steps: a private mount namespace; a root that is a copy-on-write overlay of the host
(writes stay in the pod's directory, mount points can be created anywhere); the host's /proc,
/sys and other mounts; a small /dev; the pod's volumes at their mountPath; chroot; exec.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
from typing import Any

CLONE_NEWNS = 0x00020000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(_libc.mount(source.encode() if source else None, target.encode(),
                       fstype.encode() if fstype else None, flags,
                       data.encode() if data else None), f"mount {source} on {target}")


def host_mounts() -> list[str]:
    """Mount points of the host namespace other than /, shallowest first."""
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point != "/":
                points.append(point)
    return sorted(set(points), key=lambda p: p.count("/"))


def make_target(path: str, is_file: bool) -> None:
    if os.path.lexists(path):
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if is_file:
        open(path, "a").close()
    else:
        os.makedirs(path, exist_ok=True)


def setup_root(spec: dict[str, Any]) -> str:
    root: str = spec["root"]
    for d in (spec["upper"], spec["work"], root):
        os.makedirs(d, exist_ok=True)
    mount("overlay", root, "overlay", 0,
          f"lowerdir=/,upperdir={spec['upper']},workdir={spec['work']}")
    skip = ("/proc", "/sys", "/dev")
    for point in host_mounts():
        if point in skip or any(point.startswith(s + "/") for s in skip):
            continue
        if point == root or point.startswith(spec["pod_dir"]):
            continue
        target = root + point
        if os.path.isdir(point) and os.path.isdir(target):
            mount(point, target, None, MS_BIND | MS_REC)
    mount("/proc", root + "/proc", None, MS_BIND | MS_REC)
    mount("/sys", root + "/sys", None, MS_BIND | MS_REC)
    dev = root + "/dev"
    mount("tmpfs", dev, "tmpfs", MS_NOSUID, "mode=755")
    for name in ("null", "zero", "full", "random", "urandom", "tty"):
        if os.path.exists("/dev/" + name):
            make_target(dev + "/" + name, True)
            mount("/dev/" + name, dev + "/" + name, None, MS_BIND)
    for name in ("pts", "shm", "mqueue"):
        os.makedirs(dev + "/" + name, exist_ok=True)
    if os.path.isdir("/dev/pts"):
        mount("/dev/pts", dev + "/pts", None, MS_BIND | MS_REC)
    mount("shm", dev + "/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
    for link, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, dev + "/" + link)
    return root


def mount_volumes(mounts: list[dict[str, Any]]) -> None:
    """Bind each volume at its mountPath, resolved inside the container's root.

    Called after chroot, so a symlink on the way (/var/run -> /run) resolves inside the
    container and a missing mount point is created in its overlay, never on the host. The
    sources were opened before chroot; /proc/self/fd/N names them from inside.
    """
    # Deeper mount points after their parents, so a volume inside a volume lands on top.
    for m in sorted(mounts, key=lambda m: m["target"].rstrip("/").count("/")):
        source = f"/proc/self/fd/{m['fd']}"
        make_target(m["target"], m["is_file"])
        mount(source, m["target"], None, MS_BIND | MS_REC)
        if m.get("readOnly"):
            mount(source, m["target"], None, MS_BIND | MS_REMOUNT | MS_RDONLY)
        os.close(m["fd"])


def main() -> None:
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    try:
        _check(_libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
        mount(None, "/", None, MS_REC | MS_PRIVATE)
        root = setup_root(spec)
        for m in spec["mounts"]:
            m["is_file"] = os.path.isfile(m["source"])
            m["fd"] = os.open(m["source"], os.O_PATH | os.O_CLOEXEC)
        os.chroot(root)
        os.chdir("/")
        mount_volumes(spec["mounts"])
        workdir = spec.get("workingDir") or "/"
        os.makedirs(workdir, exist_ok=True)
        os.chdir(workdir)
    except OSError as exc:
        print(f"process-kubelet: cannot set up the container: {exc}", file=sys.stderr)
        sys.exit(128)
    argv = spec["argv"]
    try:
        os.execvpe(argv[0], argv, spec["env"])
    except OSError as exc:
        print(f"process-kubelet: cannot run {argv[0]!r}: {exc.strerror}", file=sys.stderr)
        sys.exit(127 if isinstance(exc, FileNotFoundError) else 126)


if __name__ == "__main__":
    main()
