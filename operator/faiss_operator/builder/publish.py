"""Where a build's artifact goes when `--out` is an object store (`s3://bucket/prefix`).

The artifact is built exactly as on a claim, in a local scratch directory (an emptyDir in the
Job), then uploaded with its manifest last (sources/artifact_store.py). A finished artifact
already at the prefix is left alone unless --overwrite, as a directory on a claim is.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from faiss_operator.builder.exit_codes import OutputError, OutputExistsError
from faiss_operator.sources import artifact_store, s3


def build_and_upload(
    *, destination: str, scratch: Path | None, env: Mapping[str, str] | None,
    build: Callable[[Path], dict[str, Any]], attempts: int, overwrite: bool,
) -> dict[str, Any]:
    """Run `build(local_dir)` in scratch, upload the result to `destination`; returns the report.

    Raises OutputExistsError before building when a finished artifact is there (unless
    `overwrite`), SourceError subclasses for the store's answers."""
    environment = os.environ if env is None else env
    prefix = s3.parse(destination, prefix=True)
    if not prefix.key:
        raise OutputError(f"{destination}: an artifact needs a prefix inside the bucket (s3://<bucket>/<prefix>)")
    settings = s3.Settings.from_environment(environment, attempts=attempts)
    client = s3.client(settings, environ=environment)
    if not overwrite and artifact_store.committed(client, prefix, settings=settings):
        raise OutputExistsError(f"{destination} already holds a finished artifact; pass --overwrite to replace it")
    try:
        work = Path(tempfile.mkdtemp(prefix="faiss-artifact-", dir=scratch))
    except OSError as error:
        raise OutputError(f"cannot create a scratch directory in {scratch or tempfile.gettempdir()}: {error}") from None
    try:
        report = build(work / "artifact")
        if overwrite and artifact_store.committed(client, prefix, settings=settings):
            # A retried build replaces the artifact: take its manifest away first, so that no pod
            # starts downloading a mix of the old files and the new.
            artifact_store.delete(client, prefix, settings=settings)
        manifest = artifact_store.upload(client, work / "artifact", prefix, settings=settings)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report["artifact"] = prefix.uri
    report["artifact_bytes"] = sum(int(entry["bytes"]) for entry in manifest["files"].values())
    return report

