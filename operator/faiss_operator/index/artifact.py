"""The on-disk artifact of a built index: a directory whose manifest checksums every file in it.

A serving pod must never answer from a half-copied or altered index, so the manifest records the
sha256 and size of every file, and `verify_artifact` refuses a directory with a missing, extra,
truncated or corrupt file before anything is loaded. The manifest's shape is the contract's
(contract/artifact_manifest.py); `write_manifest` builds it in memory and writes it once, after
every other file (the builder adds its query sample, ground truth and report first).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pydantic

from faiss_operator.contract import artifact_manifest

MANIFEST_NAME = "manifest.json"
# The build adds its evaluation beside the index: the query sample, its exact answers (positions
# and external ids), the input rows the sample came from (absent for held-out queries), the report.
QUERIES_FILE = "queries.npy"
QUERY_ROWS_FILE = "query_rows.npy"
GROUND_TRUTH_FILE = "ground_truth.npy"
GROUND_TRUTH_IDS_FILE = "ground_truth_ids.json"
REPORT_FILE = "report.json"
FORMAT_VERSION = artifact_manifest.FORMAT_VERSION
_CHUNK = 1 << 20


class ArtifactError(ValueError):
    """An artifact directory that cannot be trusted or does not fit; the message names the file."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _artifact_files(directory: Path) -> list[str]:
    names = []
    for path in sorted(directory.rglob("*")):
        if path.is_file() and path.name != MANIFEST_NAME and not path.name.startswith(".manifest"):
            names.append(path.relative_to(directory).as_posix())
    return names


def write_manifest(directory: str | os.PathLike[str], **fields: Any) -> dict[str, Any]:
    """Checksum every file in `directory` (but the manifest) and write manifest.json with `fields`.

    `fields` are those of contract/artifact_manifest.ArtifactManifest but `files` and
    `format_version`; one missing or of the wrong type raises ArtifactError before anything is
    written. Returns the manifest as written. Re-writing replaces the previous manifest entirely,
    so pass all fields again (read the old one with `read_manifest` to keep them).
    """
    root = Path(directory)
    if not root.is_dir():
        raise ArtifactError(f"artifact {root}: not a directory")
    files = {
        name: {"sha256": sha256_of(root / name), "bytes": (root / name).stat().st_size}
        for name in _artifact_files(root)
    }
    try:
        manifest = artifact_manifest.ArtifactManifest.model_validate({**fields, "files": files})
    except pydantic.ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, item['loc']))}: {item['msg']}" for item in error.errors())
        raise ArtifactError(f"artifact {root}: not a manifest: {problems}") from None
    text = manifest.to_json()
    temporary = root / ".manifest.json.tmp"
    temporary.write_text(text)
    os.replace(temporary, root / MANIFEST_NAME)
    written: dict[str, Any] = json.loads(text)
    return written


def read_manifest(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of `directory`, without checking the files against it."""
    root = Path(directory)
    if not root.is_dir():
        raise ArtifactError(f"artifact {root}: no such directory")
    path = root / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtifactError(f"artifact {root}: {MANIFEST_NAME} is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ArtifactError(f"artifact {root}: {MANIFEST_NAME} is not readable JSON: {error}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise ArtifactError(f"artifact {root}: {MANIFEST_NAME} has no 'files' table")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"artifact {root}: {MANIFEST_NAME} format_version {manifest.get('format_version')!r} "
            f"is not supported (expected {FORMAT_VERSION})"
        )
    return manifest


def verify_file(root: Path, name: str, entry: dict[str, Any]) -> None:
    """One file of the artifact at `root` against its manifest entry (size, then sha256)."""
    path = root / name
    if not path.is_file():
        raise ArtifactError(f"artifact {root}: file {name} is missing")
    size = path.stat().st_size
    if size != entry.get("bytes"):
        kind = "truncated" if size < int(entry.get("bytes", 0)) else "longer than recorded"
        raise ArtifactError(
            f"artifact {root}: file {name} is {kind} ({size} bytes, manifest says {entry.get('bytes')})"
        )
    if sha256_of(path) != entry.get("sha256"):
        raise ArtifactError(f"artifact {root}: file {name} is corrupt (sha256 does not match the manifest)")


def verify_artifact(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest, once every file matches its recorded size and sha256 and no file is extra."""
    root = Path(directory)
    manifest = read_manifest(root)
    recorded: dict[str, Any] = manifest["files"]
    for name, entry in sorted(recorded.items()):
        verify_file(root, name, entry)
    extra = sorted(set(_artifact_files(root)) - set(recorded))
    if extra:
        raise ArtifactError(f"artifact {root}: files not in the manifest: {', '.join(extra)}")
    return manifest
