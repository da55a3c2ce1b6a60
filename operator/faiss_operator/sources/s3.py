"""Objects in S3 and S3-compatible stores (`s3://bucket/key`), read and written through boto3.

boto3 does the hard parts: multipart transfers on a thread pool, retries with backoff, the SDK's
own checksums (CRC32 on upload, verified on download where the store sends one), and the
credential chain. Everything about *where* the store is comes from the SDK's own environment
variables, so the same settings work for the operator, the build Job and the serving pods:

* `AWS_ENDPOINT_URL_S3` (or `AWS_ENDPOINT_URL`) — an S3-compatible store (Ceph RGW, GCS
  interoperability, R2, versitygw); unset means AWS itself.
* `AWS_REGION` / `AWS_DEFAULT_REGION` — the region to sign for (default us-east-1).
* `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` — static keys (from a Secret); without them the
  SDK's default chain (IRSA web identity, instance profile, ...) is used.
* `FAISS_S3_ADDRESSING_STYLE` — `path` (most S3-compatible stores), `virtual` or `auto` (default).

Every failure is turned into a SourceError naming the object and what to do: a missing bucket or
key is SourceNotFoundError, wrong credentials or an unreachable store SourceFetchError.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import shutil
import time
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal, cast, get_args

import boto3
import boto3.s3.transfer
import botocore.config
import botocore.exceptions

from faiss_operator.sources import errors

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

SCHEME = "s3"
ENV_ADDRESSING_STYLE = "FAISS_S3_ADDRESSING_STYLE"
AddressingStyle = Literal["auto", "path", "virtual"]
ADDRESSING_STYLES: tuple[str, ...] = get_args(AddressingStyle)
DEFAULT_REGION = "us-east-1"
# Multipart above 64 MiB in 16 MiB parts: few requests for a multi-GB index, parts small enough
# that a retried one costs little. Measured in benchmarks/artifact_transfer.py.
MULTIPART_THRESHOLD = 64 << 20
PART_BYTES = 16 << 20
CONCURRENCY = 10  # boto3's default
PROGRESS_EVERY_SECONDS = 5.0

# S3 error codes, by what the user has to do about them.
_NOT_FOUND = frozenset({"404", "NoSuchKey", "NoSuchBucket", "NotFound"})
_DENIED = frozenset({
    "403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
    "InvalidToken", "AuthorizationHeaderMalformed",
})


@dataclasses.dataclass(frozen=True)
class Location:
    """`s3://bucket/key`; for a prefix (artifacts) `key` names a "directory" without a trailing slash."""

    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"{SCHEME}://{self.bucket}/{self.key}" if self.key else f"{SCHEME}://{self.bucket}"

    def join(self, *parts: str) -> Location:
        return Location(self.bucket, "/".join(p.strip("/") for p in (self.key, *parts) if p.strip("/")))

    @property
    def filename(self) -> str:
        return self.key.rsplit("/", 1)[-1]


def is_s3(uri: str) -> bool:
    return urllib.parse.urlsplit(uri).scheme.lower() == SCHEME


def parse(uri: str, *, prefix: bool = False) -> Location:
    """`s3://bucket/key` (a key is required unless `prefix`); raises UnsupportedSourceError."""
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme.lower() != SCHEME:
        raise errors.UnsupportedSourceError(f"{uri}: not an s3://<bucket>/<key> URI")
    bucket = parts.netloc
    if not bucket:
        raise errors.UnsupportedSourceError(f"{uri}: an s3:// URI needs a bucket (s3://<bucket>/<key>)")
    if parts.query or parts.fragment:
        raise errors.UnsupportedSourceError(f"{uri}: an s3:// URI takes no ?query or #fragment")
    key = urllib.parse.unquote(parts.path).strip("/")
    if any(segment in ("", ".", "..") for segment in key.split("/")) and key:
        raise errors.UnsupportedSourceError(f"{uri}: the key may not hold empty, '.' or '..' segments")
    if not key and not prefix:
        raise errors.UnsupportedSourceError(f"{uri}: the URI names a bucket, not an object (s3://<bucket>/<key>)")
    return Location(bucket, key)


@dataclasses.dataclass(frozen=True)
class Settings:
    """How to reach the store; `from_environment` reads the variables in the module docstring."""

    endpoint_url: str | None = None
    region: str = DEFAULT_REGION
    addressing_style: AddressingStyle = "auto"
    attempts: int = 5
    connect_timeout_seconds: float = 10.0
    read_timeout_seconds: float = 60.0

    @classmethod
    def from_environment(cls, environ: Mapping[str, str], *, attempts: int = 5) -> Settings:
        style = environ.get(ENV_ADDRESSING_STYLE, "auto") or "auto"
        if style not in ADDRESSING_STYLES:
            raise errors.UnsupportedSourceError(
                f"{ENV_ADDRESSING_STYLE}={style!r}: expected one of {', '.join(ADDRESSING_STYLES)}"
            )
        return cls(
            endpoint_url=environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL") or None,
            region=environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION,
            addressing_style=cast(AddressingStyle, style),
            attempts=attempts,
        )

    @property
    def where(self) -> str:
        return self.endpoint_url or f"AWS S3 ({self.region})"


def client(settings: Settings, *, environ: Mapping[str, str] | None = None) -> S3Client:
    """An S3 client with retries, timeouts and checksums on every request that supports them.

    Static keys come from `environ` when given (a test, or a Secret read by the caller), else the
    SDK's default chain, which reads the process environment, web identity tokens and so on."""
    config = botocore.config.Config(
        region_name=settings.region,
        retries={"mode": "standard", "max_attempts": settings.attempts},
        connect_timeout=settings.connect_timeout_seconds,
        read_timeout=settings.read_timeout_seconds,
        s3={"addressing_style": settings.addressing_style},
        request_checksum_calculation="when_supported",
        response_checksum_validation="when_supported",
        max_pool_connections=CONCURRENCY * 2,
    )
    keys: dict[str, str] = {}
    if environ is not None and environ.get("AWS_ACCESS_KEY_ID"):
        keys = {
            "aws_access_key_id": environ["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": environ.get("AWS_SECRET_ACCESS_KEY", ""),
        }
    session = boto3.session.Session()
    return session.client("s3", endpoint_url=settings.endpoint_url, config=config, **keys)  # type: ignore[call-overload,no-any-return]


def transfer_config() -> boto3.s3.transfer.TransferConfig:
    return boto3.s3.transfer.TransferConfig(
        multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=PART_BYTES, max_concurrency=CONCURRENCY,
    )


@dataclasses.dataclass(frozen=True)
class ObjectInfo:
    """What identifies one stored version of an object: its size, ETag and version id (if any)."""

    bytes: int
    etag: str
    version_id: str | None
    sha256: str | None = None  # of the bytes received, once downloaded


def describe_error(error: BaseException, location: Location, settings: Settings, *, action: str) -> errors.SourceError:
    """The SourceError for a failed request, naming the object, the store and what to check."""
    where = f"{location.uri} on {settings.where}"
    if isinstance(error, botocore.exceptions.ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = str(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        if code in _NOT_FOUND or status == "404":
            what = "bucket" if code == "NoSuchBucket" else "object"
            return errors.SourceNotFoundError(f"{where}: {action} failed: no such {what} ({code or status})")
        if code in _DENIED or status == "403":
            return errors.SourceFetchError(
                f"{where}: {action} failed: access denied ({code or status}); check the credentials "
                "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the pod's identity) and the bucket policy"
            )
        return errors.SourceFetchError(f"{where}: {action} failed: {code or status}: {error}")
    if isinstance(error, botocore.exceptions.NoCredentialsError):
        return errors.SourceFetchError(
            f"{where}: {action} failed: no credentials found (set a Secret with AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or give the pod an identity through its service account)"
        )
    if isinstance(error, (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError)):
        # Refused, reset, closed mid-answer or silent past the read timeout, after the SDK's retries.
        return errors.SourceFetchError(f"{where}: {action} failed: the store is unreachable: {error}")
    if isinstance(error, botocore.exceptions.BotoCoreError):
        return errors.SourceFetchError(f"{where}: {action} failed: {type(error).__name__}: {error}")
    return errors.SourceFetchError(f"{where}: {action} failed: {type(error).__name__}: {error}")


def head(s3: S3Client, location: Location, settings: Settings) -> ObjectInfo:
    try:
        answer = s3.head_object(Bucket=location.bucket, Key=location.key)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        raise describe_error(error, location, settings, action="reading the object's size") from None
    return ObjectInfo(
        bytes=int(answer["ContentLength"]), etag=str(answer.get("ETag", "")).strip('"'),
        version_id=answer.get("VersionId") or None,
    )


class Progress:
    """A boto3 transfer callback: logs `Progress: phase=... percent=...` at most every few seconds."""

    def __init__(self, *, phase: str, uri: str, total: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.phase, self.uri, self.total, self._clock = phase, uri, total, clock
        self.done = 0
        self._started = clock()
        self._logged = self._started - PROGRESS_EVERY_SECONDS

    def __call__(self, transferred: int) -> None:
        self.done += transferred
        now = self._clock()
        if now - self._logged >= PROGRESS_EVERY_SECONDS or self.done >= self.total:
            self._logged = now
            elapsed = max(now - self._started, 1e-9)
            percent = 100.0 * self.done / self.total if self.total else 100.0
            logger.info("Progress: phase=%s percent=%.0f uri=%s bytes=%d/%d mb_per_s=%.1f",
                        self.phase, percent, self.uri, self.done, self.total, self.done / elapsed / 1e6)


def free_bytes(directory: Path) -> int:
    """Space left for a download in `directory` (the filesystem's free bytes for this user)."""
    return shutil.disk_usage(directory).free


def download(
    s3: S3Client, location: Location, destination: Path, *, settings: Settings, max_bytes: int,
    known: ObjectInfo | None = None,
) -> ObjectInfo:
    """Stream one object to `destination` (checked against `max_bytes` first); returns its identity.

    `known`: the size is known already (from a manifest), so no HEAD request is made first. The
    partial file is removed on any failure. The SDK verifies the store's checksum where the
    object has one; the caller checks the project's own SHA-256 where it has one (manifests)."""
    info = known if known is not None else head(s3, location, settings)
    if info.bytes > max_bytes:
        raise errors.SourceTooLargeError(
            f"{location.uri}: {info.bytes} bytes is more than the limit of {max_bytes} bytes "
            "(the build's scratch space; raise it or use a smaller input)"
        )
    destination.parent.mkdir(parents=True, exist_ok=True)
    free = free_bytes(destination.parent)
    if info.bytes > free:
        raise errors.SourceTooLargeError(
            f"{location.uri}: {info.bytes} bytes do not fit in {destination.parent}, which has {free} bytes free"
        )
    extra: dict[str, str] = {"ChecksumMode": "ENABLED"}
    if info.version_id:
        extra["VersionId"] = info.version_id  # the version measured above, not a newer upload
    logger.info("Downloading object: uri=%s bytes=%d endpoint=%s", location.uri, info.bytes, settings.where)
    digest = hashlib.sha256()
    try:
        with destination.open("wb") as out:
            # Not seekable, so the SDK writes the parts in order (still fetched in parallel) and
            # the SHA-256 is computed while the rest arrives, not in a second pass.
            s3.download_fileobj(
                location.bucket, location.key, cast(BinaryIO, _HashingWriter(out, digest)), ExtraArgs=extra,
                Callback=Progress(phase="download", uri=location.uri, total=info.bytes), Config=transfer_config(),
            )
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        destination.unlink(missing_ok=True)
        raise describe_error(error, location, settings, action="download") from None
    except OSError as error:
        destination.unlink(missing_ok=True)
        raise errors.DownloadWriteError(f"{location.uri}: cannot write {destination}: {error}") from None
    except BaseException:
        destination.unlink(missing_ok=True)
        raise
    size = destination.stat().st_size
    if size != info.bytes:
        destination.unlink(missing_ok=True)
        raise errors.SourceFetchError(f"{location.uri}: received {size} of {info.bytes} bytes")
    return dataclasses.replace(info, sha256=digest.hexdigest())


class _HashingWriter(io.RawIOBase):
    """A write-only, non-seekable file that hashes what it passes on."""

    def __init__(self, out: BinaryIO, digest: hashlib._Hash) -> None:
        super().__init__()
        self._out = out
        self._digest = digest

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, data: ReadableBuffer) -> int:
        view = memoryview(data)
        self._out.write(view)
        self._digest.update(view)
        return view.nbytes


def upload(s3: S3Client, source: Path, location: Location, *, settings: Settings) -> None:
    """Upload one file, multipart when large, with a CRC32 checksum the store verifies."""
    try:
        s3.upload_file(
            str(source), location.bucket, location.key, ExtraArgs={"ChecksumAlgorithm": "CRC32"},
            Callback=Progress(phase="upload", uri=location.uri, total=source.stat().st_size),
            Config=transfer_config(),
        )
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        raise describe_error(error, location, settings, action="upload") from None
    except boto3.exceptions.S3UploadFailedError as error:
        cause = error.__context__ if error.__context__ is not None else error
        raise describe_error(cause, location, settings, action="upload") from None


def delete_prefix(s3: S3Client, prefix: Location, *, settings: Settings) -> int:
    """Delete every object under `prefix/`; returns how many. A missing prefix deletes nothing."""
    deleted = 0
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=prefix.bucket, Prefix=f"{prefix.key}/")
        for page in pages:
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=prefix.bucket, Delete={"Objects": keys, "Quiet": True})  # type: ignore[typeddict-item]
                deleted += len(keys)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        raise describe_error(error, prefix, settings, action="deleting the prefix") from None
    return deleted
