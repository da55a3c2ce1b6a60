"""Build artifacts in object storage: uploaded with the manifest last, downloaded and verified.

An object store has no rename, so the manifest is the commit marker: every file is uploaded
first, the manifest (with the SHA-256 and size of each file) last. A prefix without a manifest is
an artifact that was never finished and nothing may serve it; an upload that fails part-way
deletes what it wrote, and so does the cleanup path (`delete`). A download reads the manifest
first, fetches exactly the files it lists, then checks every one against it (index/artifact.py),
so a corrupt or missing object never reaches `serve`.
"""

from __future__ import annotations

import concurrent.futures
import logging
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faiss_operator.index import artifact
from faiss_operator.sources import errors, s3

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

PARALLEL_FILES = 4


class ArtifactTransferError(errors.SourceError):
    """An artifact could not be uploaded or downloaded; the message names the object and why."""


def committed(s3_client: S3Client, prefix: s3.Location, *, settings: s3.Settings) -> bool:
    """Whether `prefix/` holds a finished artifact (its manifest, the commit marker)."""
    try:
        s3.head(s3_client, prefix.join(artifact.MANIFEST_NAME), settings)
    except errors.SourceNotFoundError:
        return False
    return True


def upload(s3_client: S3Client, directory: Path, prefix: s3.Location, *, settings: s3.Settings) -> dict[str, Any]:
    """Upload an artifact directory to `prefix/`, the manifest last; returns the manifest.

    On any failure the objects already written are deleted (best effort: the store may be the
    thing that failed; then no manifest was written, and the cleanup Job removes them later)."""
    manifest = artifact.read_manifest(directory)
    for name, entry in manifest["files"].items():
        # The builder hashed these files a moment ago; every download hashes them again. Here only
        # the cheap check that each is there, whole.
        path = directory / name
        if not path.is_file() or path.stat().st_size != entry.get("bytes"):
            raise artifact.ArtifactError(f"artifact {directory}: file {name} is missing or not the size recorded")
    names = sorted(manifest["files"])
    started = time.monotonic()
    total = sum(int(entry["bytes"]) for entry in manifest["files"].values())
    logger.info("Uploading artifact: uri=%s files=%d bytes=%d", prefix.uri, len(names) + 1, total)
    try:
        for name in names:
            s3.upload(s3_client, directory / name, prefix.join(name), settings=settings)
        s3.upload(s3_client, directory / artifact.MANIFEST_NAME, prefix.join(artifact.MANIFEST_NAME), settings=settings)
    except errors.SourceError as error:
        logger.error("Upload failed, deleting the partial artifact: uri=%s error=%s", prefix.uri, error)
        _delete_quietly(s3_client, prefix, settings)
        raise ArtifactTransferError(f"uploading the artifact to {prefix.uri} failed: {error}") from None
    elapsed = time.monotonic() - started
    logger.info("Uploaded artifact: uri=%s bytes=%d seconds=%.1f mb_per_s=%.1f",
                prefix.uri, total, elapsed, total / max(elapsed, 1e-9) / 1e6)
    return manifest


def download(
    s3_client: S3Client, prefix: s3.Location, directory: Path, *, settings: s3.Settings, max_bytes: int,
) -> dict[str, Any]:
    """Download the artifact at `prefix/` into the new directory `directory` and verify it.

    Raises ArtifactTransferError (no manifest: never committed; store errors) or
    artifact.ArtifactError (a file that does not match the manifest). `directory` is removed on
    failure, so a retry starts clean."""
    if directory.exists():
        raise ArtifactTransferError(f"{directory} already exists; the download needs an empty place")
    started = time.monotonic()
    try:
        manifest_path = directory / artifact.MANIFEST_NAME
        try:
            s3.download(s3_client, prefix.join(artifact.MANIFEST_NAME), manifest_path, settings=settings,
                        max_bytes=16 << 20)
        except errors.SourceNotFoundError as error:
            raise ArtifactTransferError(
                f"{prefix.uri}: no {artifact.MANIFEST_NAME}: the artifact does not exist or its upload never "
                f"finished ({error})"
            ) from None
        manifest = artifact.read_manifest(directory)
        files: dict[str, Any] = manifest["files"]
        total = sum(int(entry.get("bytes", 0)) for entry in files.values())
        if total > max_bytes:
            raise ArtifactTransferError(
                f"{prefix.uri}: the artifact holds {total} bytes, more than the {max_bytes} bytes of local space"
            )
        logger.info("Downloading artifact: uri=%s files=%d bytes=%d", prefix.uri, len(files), total)
        unsafe = [name for name in files if not _safe_name(name)]
        if unsafe:
            raise artifact.ArtifactError(f"artifact {prefix.uri}: manifest lists an unsafe file name {unsafe[0]!r}")

        def fetch_and_check(name: str) -> None:
            entry = files[name]
            try:
                received = s3.download(
                    s3_client, prefix.join(name), directory / name, settings=settings, max_bytes=max_bytes,
                    known=s3.ObjectInfo(bytes=int(entry.get("bytes", 0)), etag="", version_id=None),
                )
            except errors.SourceNotFoundError:
                raise artifact.ArtifactError(f"artifact {prefix.uri}: file {name} is missing") from None
            if received.sha256 != entry.get("sha256"):  # hashed as it arrived
                raise artifact.ArtifactError(
                    f"artifact {directory}: file {name} is corrupt (sha256 does not match the manifest)")

        # Largest first, a few at a time: the small files ride along while the index streams.
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=PARALLEL_FILES, thread_name_prefix="download")
        try:
            for future in [pool.submit(fetch_and_check, name)
                           for name in sorted(files, key=lambda n: -int(files[n].get("bytes", 0)))]:
                future.result()
        except Exception:
            # Let the transfers in flight end before the directory is removed, or one of them
            # would write into (and re-create) it afterwards.
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)  # a deadline must not wait for slow transfers
            raise
        pool.shutdown()
        verified = manifest
    except errors.SourceError as error:
        shutil.rmtree(directory, ignore_errors=True)
        if isinstance(error, ArtifactTransferError):
            raise
        raise ArtifactTransferError(f"downloading the artifact {prefix.uri} failed: {error}") from None
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    elapsed = time.monotonic() - started
    logger.info("Downloaded and verified artifact: uri=%s bytes=%d seconds=%.1f mb_per_s=%.1f",
                prefix.uri, total, elapsed, total / max(elapsed, 1e-9) / 1e6)
    return verified


def delete(s3_client: S3Client, prefix: s3.Location, *, settings: s3.Settings) -> int:
    """Remove the artifact at `prefix/`, manifest first so that nothing can start serving it."""
    try:
        s3_client.delete_object(Bucket=prefix.bucket, Key=prefix.join(artifact.MANIFEST_NAME).key)
    except Exception as error:  # boto3's errors; described by s3.describe_error
        raise s3.describe_error(error, prefix, settings, action="deleting the manifest") from None
    return s3.delete_prefix(s3_client, prefix, settings=settings)


def _delete_quietly(s3_client: S3Client, prefix: s3.Location, settings: s3.Settings) -> None:
    try:
        deleted = s3.delete_prefix(s3_client, prefix, settings=settings)
        logger.info("Deleted partial artifact: uri=%s objects=%d", prefix.uri, deleted)
    except errors.SourceError as error:
        logger.warning("Could not delete the partial artifact (no manifest was written): uri=%s error=%s",
                       prefix.uri, error)


def _safe_name(name: str) -> bool:
    parts = name.split("/")
    return bool(name) and not name.startswith("/") and all(p not in ("", ".", "..") for p in parts)

