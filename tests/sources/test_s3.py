"""s3:// sources against a real S3 server (versitygw on loopback): URIs, downloads, every failure."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pytest

from e2e.harness import objectstore
from faiss_operator.sources import dataset, errors, http, s3, uri as uris
from tests.s3_store import client_for, settings_for


# -- URIs (no server) -----------------------------------------------------------------------------

@pytest.mark.parametrize("uri, want", [
    ("s3://bucket/key.npy", s3.Location("bucket", "key.npy")),
    ("s3://bucket/a/b/c.npy", s3.Location("bucket", "a/b/c.npy")),
    ("S3://bucket/a%20b.npy", s3.Location("bucket", "a b.npy")),
])
def test_an_s3_uri_names_a_bucket_and_a_key(uri: str, want: s3.Location) -> None:
    assert s3.parse(uri) == want
    assert uris.parse_uri(uri) == uris.S3Source(uri, want)


@pytest.mark.parametrize("uri, message", [
    ("s3://", "needs a bucket"),
    ("s3://bucket", "names a bucket, not an object"),
    ("s3://bucket/", "names a bucket, not an object"),
    ("s3://bucket/a/../b.npy", "'..'"),
    ("s3://bucket/a//b.npy", "empty"),
    ("s3://bucket/a.npy?versionId=1", "no ?query"),
])
def test_a_malformed_s3_uri_is_refused_with_the_reason(uri: str, message: str) -> None:
    with pytest.raises(errors.UnsupportedSourceError, match=message.replace("?", r"\?").replace(".", r"\.")):
        s3.parse(uri)


def test_a_prefix_may_be_a_bucket_and_joins_file_names() -> None:
    assert s3.parse("s3://bucket", prefix=True) == s3.Location("bucket", "")
    assert s3.parse("s3://bucket/idx/", prefix=True).join("ab12", "manifest.json").uri == "s3://bucket/idx/ab12/manifest.json"


def test_settings_come_from_the_sdk_variables() -> None:
    settings = s3.Settings.from_environment({
        "AWS_ENDPOINT_URL_S3": "http://store:7070", "AWS_REGION": "eu-west-1", "FAISS_S3_ADDRESSING_STYLE": "path",
    })
    assert settings == s3.Settings(endpoint_url="http://store:7070", region="eu-west-1", addressing_style="path")
    assert s3.Settings.from_environment({}) == s3.Settings(endpoint_url=None, region="us-east-1", addressing_style="auto")


def test_an_unknown_addressing_style_is_refused() -> None:
    with pytest.raises(errors.UnsupportedSourceError, match="FAISS_S3_ADDRESSING_STYLE='sideways'"):
        s3.Settings.from_environment({"FAISS_S3_ADDRESSING_STYLE": "sideways"})


# -- against the store ----------------------------------------------------------------------------

def _put(store: objectstore.ObjectStore, bucket: str, key: str, body: bytes) -> None:
    client_for(store).put_object(Bucket=bucket, Key=key, Body=body)


def test_a_build_reads_embeddings_ids_and_metadata_from_s3(
    object_store: objectstore.ObjectStore, bucket: str, tmp_path: Path, s3_env: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    vectors = np.random.default_rng(3).standard_normal((40, 8)).astype(np.float32)
    local = tmp_path / "v.npy"
    np.save(local, vectors)
    _put(object_store, bucket, "emb/v1/vectors.npy", local.read_bytes())
    _put(object_store, bucket, "emb/v1/ids.txt", "".join(f"doc-{i}\n" for i in range(40)).encode())
    _put(object_store, bucket, "emb/v1/meta.jsonl",
         "".join(f'{{"id": "doc-{i}", "title": "t{i}"}}\n' for i in range(40)).encode())

    with caplog.at_level(logging.INFO, logger="faiss_operator.sources.s3"):
        data = dataset.load_dataset(
            embeddings_uri=f"s3://{bucket}/emb/v1/vectors.npy", ids_uri=f"s3://{bucket}/emb/v1/ids.txt",
            metadata_uri=f"s3://{bucket}/emb/v1/meta.jsonl", dimension=8, download_dir=tmp_path / "scratch",
            env=s3_env,
        )

    np.testing.assert_array_equal(np.asarray(data.embeddings), vectors)
    assert data.ids is not None and list(data.ids) == [f"doc-{i}" for i in range(40)]
    assert data.metadata is not None and data.metadata[5] == {"id": "doc-5", "title": "t5"}
    progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Progress: phase=download")]
    assert any(f"uri=s3://{bucket}/emb/v1/vectors.npy bytes={local.stat().st_size}/{local.stat().st_size}" in line
               for line in progress), progress


def test_a_large_object_is_downloaded_in_parts_and_identified_by_its_etag(
    object_store: objectstore.ObjectStore, bucket: str, tmp_path: Path,
) -> None:
    body = np.random.default_rng(1).bytes(s3.MULTIPART_THRESHOLD + 17)
    source = tmp_path / "big.bin"
    source.write_bytes(body)
    settings = settings_for(object_store)
    client = client_for(object_store)
    s3.upload(client, source, s3.Location(bucket, "big.bin"), settings=settings)

    info = s3.download(client, s3.Location(bucket, "big.bin"), tmp_path / "out.bin", settings=settings, max_bytes=1 << 40)

    assert (tmp_path / "out.bin").read_bytes() == body
    assert info.bytes == len(body)
    # At the threshold the upload is multipart: 4 parts of 16 MiB and one of 17 B, which the ETag counts.
    assert info.etag.endswith("-5"), info.etag


def test_a_missing_key_is_source_not_found_naming_the_object(
    object_store: objectstore.ObjectStore, bucket: str, tmp_path: Path, s3_env: dict[str, str],
) -> None:
    with pytest.raises(errors.SourceNotFoundError) as raised:
        dataset.load_dataset(embeddings_uri=f"s3://{bucket}/nope.npy", download_dir=tmp_path, env=s3_env)
    assert str(raised.value) == (
        f"s3://{bucket}/nope.npy on {object_store.endpoint_url}: reading the object's size failed: no such object (404)"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_missing_bucket_is_source_not_found(
    object_store: objectstore.ObjectStore, tmp_path: Path, s3_env: dict[str, str],
) -> None:
    with pytest.raises(errors.SourceNotFoundError, match=r"s3://no-such-bucket/v\.npy on .*: no such"):
        dataset.load_dataset(embeddings_uri="s3://no-such-bucket/v.npy", download_dir=tmp_path, env=s3_env)


def test_wrong_credentials_say_access_denied(
    object_store: objectstore.ObjectStore, bucket: str, tmp_path: Path, s3_env: dict[str, str],
) -> None:
    _put(object_store, bucket, "v.npy", b"x")
    wrong = {**s3_env, "AWS_SECRET_ACCESS_KEY": "not-the-secret"}
    with pytest.raises(errors.SourceFetchError, match="access denied .*check the credentials"):
        dataset.load_dataset(embeddings_uri=f"s3://{bucket}/v.npy", download_dir=tmp_path,
                             policy=http.DownloadPolicy(attempts=1), env=wrong)


def test_an_object_larger_than_the_scratch_limit_is_refused_before_downloading(
    object_store: objectstore.ObjectStore, bucket: str, tmp_path: Path, s3_env: dict[str, str],
) -> None:
    _put(object_store, bucket, "big.npy", bytes(5000))
    with pytest.raises(errors.SourceTooLargeError, match=r"s3://.*/big\.npy: 5000 bytes is more than the limit of 1000"):
        dataset.load_dataset(embeddings_uri=f"s3://{bucket}/big.npy", download_dir=tmp_path / "d",
                             policy=http.DownloadPolicy(max_bytes=1000), env=s3_env)
    assert not (tmp_path / "d" / "big.npy").exists()


def test_an_unreachable_store_is_a_fetch_error_not_a_hang(
    private_object_store: objectstore.ObjectStore, tmp_path: Path,
) -> None:
    environment = private_object_store.environment()
    private_object_store.stop()
    settings = dataclasses.replace(s3.Settings.from_environment(environment, attempts=2), connect_timeout_seconds=2)
    client = s3.client(settings, environ=environment)
    with pytest.raises(errors.SourceFetchError, match="the store is unreachable"):
        s3.download(client, s3.Location("b", "k.npy"), tmp_path / "k.npy", settings=settings, max_bytes=1 << 30)


def test_an_object_larger_than_the_free_scratch_space_is_refused_before_downloading(
    object_store: objectstore.ObjectStore, bucket: str, tmp_path: Path, s3_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The emptyDir of the build may be far smaller than the object: refused with both sizes, not
    a disk-full error half-way (the free space is what the filesystem says, here made small)."""
    _put(object_store, bucket, "big.npy", bytes(5000))
    monkeypatch.setattr(s3, "free_bytes", lambda directory: 4096)
    with pytest.raises(errors.SourceTooLargeError) as raised:
        dataset.load_dataset(embeddings_uri=f"s3://{bucket}/big.npy", download_dir=tmp_path / "d", env=s3_env)
    assert str(raised.value) == f"s3://{bucket}/big.npy: 5000 bytes do not fit in {tmp_path / 'd'}, which has 4096 bytes free"
    assert list((tmp_path / "d").iterdir()) == []
