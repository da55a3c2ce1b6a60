"""The whole input of a build — embeddings, ids, metadata — opened and validated in one call.

Every check that can fail runs here, before the build trains or adds anything, so that a bad
input costs seconds, not the minutes of a build, and leaves nothing behind.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from faiss_operator.sources import embeddings as embeddings_io
from faiss_operator.sources import errors, http, ids as ids_io, metadata as metadata_io, s3, uri as uris

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Validated input: `embeddings` is usually a read-only memory map."""

    embeddings: embeddings_io.Embeddings
    ids: ids_io.Ids | None
    metadata: list[dict[str, Any]] | None  # aligned with the vectors
    source: str

    @property
    def count(self) -> int:
        return int(self.embeddings.shape[0])

    @property
    def dimension(self) -> int:
        return int(self.embeddings.shape[1])


def materialize(
    uri: str, *, download_dir: Path, policy: http.DownloadPolicy, env: Mapping[str, str] | None = None
) -> Path:
    """A local path holding the content of `uri`, downloading http(s) and s3 sources into `download_dir`."""
    source = uris.parse_uri(uri, env=env)
    if isinstance(source, uris.LocalSource):
        return source.path
    name = source.filename or "download"
    download_dir.mkdir(parents=True, exist_ok=True)
    destination = download_dir / name
    suffix = 1
    while destination.exists():
        destination = download_dir / f"{suffix}-{name}"
        suffix += 1
    if isinstance(source, uris.S3Source):
        environment = os.environ if env is None else env
        settings = s3.Settings.from_environment(environment, attempts=policy.attempts)
        client = s3.client(settings, environ=environment)
        s3.download(client, source.location, destination, settings=settings, max_bytes=policy.max_bytes)
        return destination
    logger.info("Downloading source: url=%s", source.url)
    return http.download(source.url, destination, policy=policy)


def load_dataset(
    *,
    embeddings_uri: str,
    ids_uri: str | None = None,
    metadata_uri: str | None = None,
    dimension: int | None = None,
    download_dir: Path,
    policy: http.DownloadPolicy = http.DownloadPolicy(),
    metadata_id_key: str = metadata_io.DEFAULT_ID_KEY,
    env: Mapping[str, str] | None = None,
) -> Dataset:
    """Open and validate every input; raises a SourceError subclass naming the problem."""
    if dimension is not None and dimension <= 0:
        raise errors.DimensionMismatchError(f"the expected dimension must be positive, got {dimension}")

    def local(uri: str) -> Path:
        return materialize(uri, download_dir=download_dir, policy=policy, env=env)

    vectors = embeddings_io.open_embeddings(local(embeddings_uri), name=embeddings_uri)
    embeddings_io.check_dimension(vectors, dimension, name=embeddings_uri)
    logger.info("Checking vectors: source=%s vectors=%d dimension=%d dtype=%s",
                embeddings_uri, vectors.shape[0], vectors.shape[1], vectors.dtype)
    embeddings_io.check_finite(vectors, name=embeddings_uri)

    ids: ids_io.Ids | None = None
    if ids_uri is not None:
        ids = ids_io.read_ids(local(ids_uri), name=ids_uri)
        ids_io.check_ids(ids, len(vectors), name=ids_uri)

    aligned: list[dict[str, Any]] | None = None
    if metadata_uri is not None:
        records = metadata_io.read_metadata(local(metadata_uri), id_key=metadata_id_key, name=metadata_uri)
        keys: ids_io.Ids = ids if ids is not None else np.arange(len(vectors), dtype=np.int64)
        metadata_io.check_metadata(records, keys, name=metadata_uri)
        aligned = metadata_io.aligned(records, keys)
    return Dataset(embeddings=vectors, ids=ids, metadata=aligned, source=embeddings_uri)
