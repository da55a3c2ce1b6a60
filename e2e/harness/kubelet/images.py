"""The images this node can run: those `make image` put in the project's podman storage.

No registry is involved: an image is looked up by its reference in the storage hack/image/build.sh
writes (under ~/.cache/faiss-operator/podman, with the project's containers.conf, never the host's),
and its root filesystem is unpacked once per image id into a cache beside it. Containers never
write to that copy: each run mounts an overlay on it (e2e/harness/kubelet/runc.py).
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import shutil
import subprocess
import threading

from e2e.harness.kubelet import ocispec

CACHE = pathlib.Path(os.environ.get("FAISS_OPERATOR_CACHE")
                     or pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache") / "faiss-operator")
PODMAN_DIR = CACHE / "podman"
ROOTFS_DIR = CACHE / "rootfs"


class ImageNotPresent(LookupError):
    """The image is not in the project's storage (the kubelet's ErrImageNeverPull)."""


@dataclasses.dataclass(frozen=True)
class Image:
    id: str
    rootfs: pathlib.Path
    config: ocispec.ImageConfig


def short_name(reference: str) -> str:
    """The image's name without registry, tag or digest: `python` of `docker.io/library/python:3.11`."""
    return reference.rsplit("/", 1)[-1].split("@", 1)[0].split(":", 1)[0]


def podman_env() -> dict[str, str]:
    """The environment podman needs to read the project's storage (hack/image/podman-env.sh)."""
    return {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "CONTAINERS_CONF": str(PODMAN_DIR / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(PODMAN_DIR / "storage.conf")}


def _podman(*args: str, stdout: int | None = subprocess.PIPE) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["podman", *args], env=podman_env(), stdout=stdout, stderr=subprocess.PIPE,
                          check=False, timeout=600)


def _passwd_ids(rootfs: pathlib.Path, name: str) -> tuple[int, int] | None:
    try:
        lines = (rootfs / "etc" / "passwd").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split(":")
        if len(fields) >= 4 and fields[0] == name:
            return int(fields[2]), int(fields[3])
    return None


class Store:
    """Image lookups and unpacked root filesystems, shared by every pod worker of the node."""

    def __init__(self, rootfs_dir: pathlib.Path = ROOTFS_DIR) -> None:
        self.rootfs_dir = rootfs_dir
        self._lock = threading.Lock()

    def available(self) -> bool:
        return shutil.which("podman") is not None and (PODMAN_DIR / "storage.conf").is_file()

    def get(self, reference: str) -> Image:
        if not self.available():
            raise ImageNotPresent(f'Container image "{reference}" is not present with pull policy of Never '
                                  "(no image storage: run `make image`)")
        found = _podman("image", "inspect", reference)
        if found.returncode != 0:
            raise ImageNotPresent(f'Container image "{reference}" is not present with pull policy of Never')
        inspect = json.loads(found.stdout)[0]
        image_id = str(inspect["Id"])
        config = ocispec.ImageConfig.from_inspect(inspect.get("Config") or {})
        with self._lock:
            rootfs = self._unpack(image_id)
        return Image(id=image_id, rootfs=rootfs, config=config)

    def user_ids(self, image: Image) -> tuple[int, int] | None:
        """uid and gid of the image's USER when it is a name, from the image's /etc/passwd."""
        name = image.config.user.partition(":")[0]
        return None if not name or name.isdigit() else _passwd_ids(image.rootfs, name)

    def _unpack(self, image_id: str) -> pathlib.Path:
        target = self.rootfs_dir / image_id
        if target.is_dir():
            return target
        partial = self.rootfs_dir / f"{image_id}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        name = f"faiss-kubelet-unpack-{image_id[:12]}"
        _podman("rm", "--force", name)
        # A command, never run: an imported base has neither ENTRYPOINT nor CMD, and podman
        # refuses to create a container without one.
        created = _podman("create", "--name", name, image_id, "true")
        if created.returncode != 0:
            raise ImageNotPresent(f"cannot create a container of image {image_id[:12]}: "
                                  f"{created.stderr.decode(errors='replace').strip()}")
        try:
            exporter = subprocess.Popen(["podman", "export", name], env=podman_env(), stdout=subprocess.PIPE)
            assert exporter.stdout is not None
            tar = subprocess.run(["tar", "-x", "--numeric-owner", "-p", "-C", str(partial)],
                                 stdin=exporter.stdout, stderr=subprocess.PIPE, check=False)
            exporter.stdout.close()
            if exporter.wait() != 0 or tar.returncode != 0:
                raise ImageNotPresent(f"cannot unpack image {image_id[:12]}: {tar.stderr.decode(errors='replace')}")
        finally:
            _podman("rm", "--force", name)
        partial.rename(target)
        return target
