"""Where a source URI points: a local file, an http(s) URL or an s3:// object to download.

Accepted forms:

* `/abs/path`, `relative/path` and `file:///abs/path` — a local file.
* `pvc://<claim>/<path>` — a file on a PersistentVolumeClaim. A pod sees a claim only where it is
  mounted, so the mapping is fixed by convention: the claim is mounted at
  `$FAISS_PVC_ROOT/<claim>` (default root `/mnt/pvc`), and the URI resolves to
  `$FAISS_PVC_ROOT/<claim>/<path>`. The controller mounts claims there; outside a pod, set
  FAISS_PVC_ROOT to wherever the claims' contents are. `..` may not climb out of the claim.
* `http://...` and `https://...` — downloaded (see sources/http.py).
* `s3://<bucket>/<key>` — downloaded from S3 or an S3-compatible store (see sources/s3.py).
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
import re
import urllib.parse
from collections.abc import Mapping
from pathlib import Path

from faiss_operator.sources import errors, s3

ENV_PVC_ROOT = "FAISS_PVC_ROOT"
DEFAULT_PVC_ROOT = "/mnt/pvc"
# A claim name is a DNS-1123 subdomain.
_CLAIM_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


@dataclasses.dataclass(frozen=True)
class LocalSource:
    uri: str
    path: Path


@dataclasses.dataclass(frozen=True)
class HttpSource:
    uri: str
    url: str

    @property
    def filename(self) -> str:
        return posixpath.basename(urllib.parse.urlsplit(self.url).path)


@dataclasses.dataclass(frozen=True)
class S3Source:
    uri: str
    location: s3.Location

    @property
    def filename(self) -> str:
        return self.location.filename


Source = LocalSource | HttpSource | S3Source


def parse_uri(uri: str, *, env: Mapping[str, str] | None = None) -> Source:
    """Resolve `uri` to a local path or a URL; a malformed or unknown form is an error."""
    if not uri or not uri.strip():
        raise errors.UnsupportedSourceError("source URI is empty")
    parts = urllib.parse.urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme in ("", "file"):
        return LocalSource(uri, _file_path(uri, parts))
    if scheme == "pvc":
        return LocalSource(uri, pvc_path(uri, env=env))
    if scheme in ("http", "https"):
        if not parts.netloc:
            raise errors.UnsupportedSourceError(f"{uri}: an {scheme} URI needs a host")
        return HttpSource(uri, uri)
    if scheme == s3.SCHEME:
        return S3Source(uri, s3.parse(uri))
    raise errors.UnsupportedSourceError(
        f"{uri}: unsupported URI scheme {scheme!r}; expected a path, file://, pvc://, http(s):// or s3://"
    )


def _file_path(uri: str, parts: urllib.parse.SplitResult) -> Path:
    if parts.scheme == "":
        return Path(uri)
    if parts.netloc not in ("", "localhost"):
        raise errors.UnsupportedSourceError(f"{uri}: file:// URIs must name a local path (file:///path)")
    return Path(urllib.parse.unquote(parts.path))


def pvc_path(uri: str, *, env: Mapping[str, str] | None = None) -> Path:
    """The local path a pvc://<claim>/<path> URI maps to inside a pod."""
    parts = urllib.parse.urlsplit(uri)
    claim = parts.netloc
    if not _CLAIM_NAME.match(claim):
        raise errors.UnsupportedSourceError(
            f"{uri}: pvc:// URIs look like pvc://<claim>/<path>; {claim!r} is not a valid claim name"
        )
    relative = posixpath.normpath(urllib.parse.unquote(parts.path).lstrip("/"))
    if relative in ("", ".") or relative == ".." or relative.startswith("../"):
        raise errors.UnsupportedSourceError(f"{uri}: the path must name a file inside the claim {claim!r}")
    environment = os.environ if env is None else env
    root = Path(environment.get(ENV_PVC_ROOT) or DEFAULT_PVC_ROOT)
    return root / claim / relative
