"""Downloading an http(s) source to a local file, streamed, bounded in size, with retries.

The embeddings are memory-mapped, which needs a file, so a download is written to disk in
chunks (never held in memory) and checked against a size limit both from Content-Length up
front and while streaming, since a server may not send it or may lie. Connection errors, timeouts
and 5xx/429 answers are retried with exponential backoff; other 4xx answers are final.
"""

from __future__ import annotations

import dataclasses
import http.client
import logging
import os
import time
import urllib.error
import urllib.request
from typing import Any
from collections.abc import Callable
from pathlib import Path

from faiss_operator.sources import errors

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
DEFAULT_MAX_BYTES = 64 << 30
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclasses.dataclass(frozen=True)
class DownloadPolicy:
    max_bytes: int = DEFAULT_MAX_BYTES
    attempts: int = 4
    backoff_seconds: float = 0.5
    timeout_seconds: float = 60.0


def download(
    url: str,
    destination: Path,
    *,
    policy: DownloadPolicy = DownloadPolicy(),
    sleep: Callable[[float], None] = time.sleep,
) -> Path:
    """Stream `url` into `destination`; raises SourceFetchError / SourceTooLargeError."""
    last_error = ""
    for attempt in range(1, policy.attempts + 1):
        try:
            _download_once(url, destination, policy)
            return destination
        except _Retryable as error:
            last_error = str(error)
            destination.unlink(missing_ok=True)
            if attempt < policy.attempts:
                delay = policy.backoff_seconds * 2 ** (attempt - 1)
                logger.warning("Download failed, retrying: url=%s attempt=%d error=%s delay=%.1fs", url, attempt, error, delay)
                sleep(delay)
        except BaseException:
            destination.unlink(missing_ok=True)
            raise
    raise errors.SourceFetchError(f"{url}: download failed after {policy.attempts} attempts: {last_error}")


class _Retryable(Exception):
    pass


def _download_once(url: str, destination: Path, policy: DownloadPolicy) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "faiss-operator"})
    try:
        response = urllib.request.urlopen(request, timeout=policy.timeout_seconds)
    except urllib.error.HTTPError as error:
        if error.code in RETRYABLE_STATUSES:
            raise _Retryable(f"HTTP {error.code} {error.reason}") from None
        raise errors.SourceFetchError(f"{url}: HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        raise _Retryable(_describe(error)) from None
    with response:
        declared = response.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > policy.max_bytes:
            raise errors.SourceTooLargeError(
                f"{url}: {int(declared)} bytes is more than the limit of {policy.max_bytes} bytes"
            )
        received = 0
        try:
            out = open(destination, "wb")
        except OSError as error:
            raise errors.DownloadWriteError(f"{url}: cannot write {destination}: {error.strerror}") from None
        with out:
            while chunk := _read_chunk(response):
                received += len(chunk)
                if received > policy.max_bytes:
                    raise errors.SourceTooLargeError(f"{url}: more than the limit of {policy.max_bytes} bytes")
                try:
                    out.write(chunk)
                except OSError as error:
                    raise errors.DownloadWriteError(
                        f"{url}: cannot write {destination} after {received - len(chunk)} bytes: {error.strerror}"
                    ) from None
            try:
                out.flush()
                os.fsync(out.fileno())
            except OSError as error:
                raise errors.DownloadWriteError(f"{url}: cannot write {destination}: {error.strerror}") from None
        if declared is not None and declared.isdigit() and received != int(declared):
            raise _Retryable(f"connection closed after {received} of {declared} bytes")


def _read_chunk(response: Any) -> bytes:
    """The next chunk of the body; a broken connection is worth another attempt."""
    try:
        chunk: bytes = response.read(CHUNK_BYTES)
    except (OSError, http.client.HTTPException) as error:
        raise _Retryable(_describe(error)) from None
    return chunk


def _describe(error: BaseException) -> str:
    if isinstance(error, urllib.error.URLError):
        return str(error.reason)
    return f"{type(error).__name__}: {error}"
