"""The images this node can run: those `make image` put in the project's podman storage.

No registry is involved: an image is looked up by its reference in the storage hack/image/build.sh
writes (under ~/.cache/faiss-operator/podman, with the project's containers.conf, never the host's).
Its root filesystem is the layers podman's overlay driver already keeps there (each a `diff`
directory), used as they are as the lower directories of each run's overlay
(e2e/harness/kubelet/runc.py): nothing is copied or unpacked, a new image id costs nothing, and
no run ever writes to them. Only with another storage driver (or more layers than one mount's
options hold) is the image unpacked, once per image id, into a cache beside the storage.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import shutil
import subprocess
import threading
from collections.abc import Mapping

from e2e.harness.kubelet import ocispec

CACHE = pathlib.Path(os.environ.get("FAISS_OPERATOR_CACHE")
                     or pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache") / "faiss-operator")
PODMAN_DIR = CACHE / "podman"
ROOTFS_DIR = CACHE / "rootfs"


class ImageNotPresent(LookupError):
    """The image is not in the project's storage (the kubelet's ErrImageNeverPull)."""


# The longest lowerdir option kept for one overlay mount (the kernel takes a page of options).
MAX_LOWERDIR = 3500


@dataclasses.dataclass(frozen=True)
class Image:
    id: str
    layers: tuple[pathlib.Path, ...]  # the root filesystem's layers, top first; read, never written
    config: ocispec.ImageConfig

    def path(self, relative: str) -> pathlib.Path | None:
        """The topmost layer's copy of the file at `relative` (e.g. "etc/passwd"), or None."""
        for layer in self.layers:
            if (layer / relative).is_file():
                return layer / relative
        return None


def overlay_layers(inspect: Mapping[str, object]) -> tuple[pathlib.Path, ...] | None:
    """The image's layer directories, top first, from `podman image inspect`'s GraphDriver when
    the driver is overlay and they fit one mount's options; None otherwise."""
    driver = inspect.get("GraphDriver")
    if not isinstance(driver, dict) or driver.get("Name") != "overlay":
        return None
    data = driver.get("Data") or {}
    upper, lower = str(data.get("UpperDir") or ""), str(data.get("LowerDir") or "")
    layers = tuple(pathlib.Path(d) for d in (upper, *lower.split(":")) if d)
    if not layers or not all(d.is_dir() for d in layers) or len(":".join(map(str, layers))) > MAX_LOWERDIR:
        return None
    return layers


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


def _passwd_ids(image: Image, name: str) -> tuple[int, int] | None:
    passwd = image.path("etc/passwd")
    try:
        lines = passwd.read_text().splitlines() if passwd else []
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
        layers = overlay_layers(inspect)
        if layers is None:
            with self._lock:
                layers = (self._unpack(image_id),)
        return Image(id=image_id, layers=layers, config=config)

    def user_ids(self, image: Image) -> tuple[int, int] | None:
        """uid and gid of the image's USER when it is a name, from the image's /etc/passwd."""
        name = image.config.user.partition(":")[0]
        return None if not name or name.isdigit() else _passwd_ids(image, name)

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
