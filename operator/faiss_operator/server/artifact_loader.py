"""Loading a build artifact for serving: verify every checksum, then load the index.

Verification reads every file of the artifact (the index, ids, metadata, the query sample) and
compares it with the manifest, so a truncated copy or a flipped byte on the volume keeps the pod
unready with the file named in the log, instead of serving wrong answers. With several serving
processes (serve --workers) one of them verifies and the others use its verdict
(processes.VerifyOnce), and each maps the index file (FAISS's IO_FLAG_MMAP_IFC) so that they
share its pages instead of holding a copy each.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from faiss_operator.index import FAISSIndex, artifact, records



@dataclasses.dataclass(frozen=True)
class LoadedArtifact:
    index: FAISSIndex
    manifest: dict[str, Any]
    report: dict[str, Any]
    revision: str
    warmup_queries: npt.NDArray[np.float32] | None


Verifier = Callable[[Path], dict[str, Any]]
"""directory -> its manifest once every file checks out; raises artifact.ArtifactError or OSError."""


def load_artifact(
    directory: Path, *, revision: str | None = None, verify: Verifier = artifact.verify_artifact, mmap: bool = False,
) -> LoadedArtifact:
    """Raises artifact.ArtifactError (checksum, missing or extra file) or OSError.

    `verify` checks every file against the manifest (default: artifact.verify_artifact, which
    hashes them); `mmap` maps index.faiss instead of reading it (FAISSIndex.load_with_manifest).
    """
    index, manifest = FAISSIndex.load_with_manifest(directory, verified_manifest=verify(directory), mmap=mmap)
    report: dict[str, Any] = {}
    if (directory / artifact.REPORT_FILE).is_file():
        report = _read_report(directory)
    queries = None
    if (directory / artifact.QUERIES_FILE).is_file():
        queries = np.load(directory / artifact.QUERIES_FILE, allow_pickle=False).astype(np.float32, copy=False)
    revision = revision or str(manifest.get("revision") or report.get("revision") or directory.name)
    return LoadedArtifact(index=index, manifest=manifest, report=report, revision=revision, warmup_queries=queries)


def _read_report(directory: Path) -> dict[str, Any]:
    """report.json, which /v1/info quotes: a JSON object the server can encode (records.py's
    rule), else an ArtifactError, so a bad file keeps the pod unready rather than failing /v1/info."""
    try:
        report = json.loads((directory / artifact.REPORT_FILE).read_text())
        if not isinstance(report, dict):
            raise ValueError("not a JSON object")
        records.check_metadata_value(report, where=artifact.REPORT_FILE)
    except (ValueError, records.RecordError) as error:
        raise artifact.ArtifactError(f"artifact {directory}: {artifact.REPORT_FILE} is not usable: {error}") from None
    return report
