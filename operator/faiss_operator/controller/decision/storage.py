"""Where data lives: `pvc://<claim>/<path>` URIs and the paths at which pods see them, and
`s3://<bucket>/<prefix>` artifacts, which pods reach over the network instead of a mount.

A claim is mounted at /mnt/pvc/<claim>, so the same URI always maps to the same container path,
in the build Job and in the serving pods alike.
"""

from __future__ import annotations

import dataclasses
import posixpath

PVC_SCHEME = "pvc://"
S3_SCHEME = "s3://"
MOUNT_ROOT = "/mnt/pvc"


class StorageError(ValueError):
    """A URI that cannot be mounted."""


@dataclasses.dataclass(frozen=True)
class ClaimPath:
    claim: str
    path: str  # inside the claim, without a leading slash; "" is the claim's root

    @property
    def mount_path(self) -> str:
        return f"{MOUNT_ROOT}/{self.claim}"

    @property
    def container_path(self) -> str:
        return posixpath.join(self.mount_path, self.path) if self.path else self.mount_path

    def join(self, *parts: str) -> ClaimPath:
        return ClaimPath(self.claim, posixpath.join(self.path, *parts) if self.path else posixpath.join(*parts))

    @property
    def uri(self) -> str:
        return f"{PVC_SCHEME}{self.claim}/{self.path}" if self.path else f"{PVC_SCHEME}{self.claim}"


def parse_pvc(uri: str) -> ClaimPath:
    if not uri.startswith(PVC_SCHEME):
        raise StorageError(f"{uri!r}: not a pvc://<claim>/<path> URI")
    claim, _, path = uri[len(PVC_SCHEME) :].partition("/")
    if not claim:
        raise StorageError(f"{uri!r}: no claim name after pvc://")
    normalized = posixpath.normpath(path) if path else ""
    if normalized.startswith("..") or normalized.startswith("/"):
        raise StorageError(f"{uri!r}: the path must stay inside the claim")
    return ClaimPath(claim, "" if normalized == "." else normalized)


def container_location(uri: str) -> str:
    """What a pod passes to the program: the mounted path for pvc://, the URI itself otherwise."""
    if uri.startswith(PVC_SCHEME):
        return parse_pvc(uri).container_path
    return uri


def is_object_store(uri: str) -> bool:
    return uri.startswith(S3_SCHEME)


def artifact_uri(artifacts_uri: str, index_name: str, artifact_key: str) -> str:
    """The directory of one built artifact: <artifacts>/<index>/<artifact key>."""
    if is_object_store(artifacts_uri):
        bucket, _, prefix = artifacts_uri[len(S3_SCHEME):].partition("/")
        parts = [p for p in prefix.split("/") if p]
        if not bucket or any(p in (".", "..") for p in parts):
            raise StorageError(f"{artifacts_uri!r}: expected s3://<bucket>/<prefix> without '.' or '..' segments")
        return S3_SCHEME + "/".join([bucket, *parts, index_name, artifact_key])
    return parse_pvc(artifacts_uri).join(index_name, artifact_key).uri
