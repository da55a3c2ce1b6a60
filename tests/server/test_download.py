"""`faiss-operator download`, the serving pods' init step, against a real S3 server: a committed
artifact arrives verified and loads; anything else exits non-zero with the reason and leaves
nothing a `serve` could load."""

from __future__ import annotations

from pathlib import Path

import pytest

from e2e.harness import objectstore
from faiss_operator import cli
from faiss_operator.index import artifact
from faiss_operator.server import artifact_loader
from faiss_operator.sources import artifact_store, s3
from tests.s3_store import client_for, settings_for
from tests.server.conftest import make_artifact


@pytest.fixture
def stored(object_store: objectstore.ObjectStore, bucket: str, tmp_path: Path) -> s3.Location:
    """A built HNSW artifact uploaded to s3://<bucket>/idx/rev-test."""
    built = make_artifact(tmp_path)
    prefix = s3.Location(bucket, "idx/rev-test")
    artifact_store.upload(client_for(object_store), built, prefix, settings=settings_for(object_store))
    return prefix


def _download(prefix: s3.Location, out: Path, *extra: str) -> tuple[int, str]:
    out.parent.mkdir(parents=True, exist_ok=True)
    termination = out.parent / "termination-log"
    code = cli.main(["download", "--artifact", prefix.uri, "--out", str(out), "--termination-log", str(termination),
                     "--attempts", "1", *extra])
    return code, termination.read_text() if termination.exists() else ""


def test_a_committed_artifact_is_downloaded_verified_and_loads(
    stored: s3.Location, tmp_path: Path, s3_env: dict[str, str], caplog: pytest.LogCaptureFixture,
) -> None:
    out = tmp_path / "local" / "artifact"
    with caplog.at_level("INFO"):
        assert _download(stored, out) == (0, "")
    loaded = artifact_loader.load_artifact(out, mmap=True)
    assert loaded.revision == "rev-test" and loaded.index.ntotal == 2000
    assert any(r.getMessage().startswith(f"Downloaded and verified artifact: uri={stored.uri}") for r in caplog.records)


def test_a_corrupt_object_fails_its_checksum_and_leaves_nothing(
    object_store: objectstore.ObjectStore, stored: s3.Location, tmp_path: Path, s3_env: dict[str, str],
) -> None:
    client = client_for(object_store)
    key = stored.join("index.faiss").key
    body = bytearray(client.get_object(Bucket=stored.bucket, Key=key)["Body"].read())
    body[len(body) // 2] ^= 0xFF
    client.put_object(Bucket=stored.bucket, Key=key, Body=bytes(body))  # same size, one byte flipped
    out = tmp_path / "local" / "artifact"

    code, reason = _download(stored, out)

    assert code == 1
    assert reason == f"artifact {out}: file index.faiss is corrupt (sha256 does not match the manifest)"
    assert not out.exists()


def test_a_missing_object_is_named(
    object_store: objectstore.ObjectStore, stored: s3.Location, tmp_path: Path, s3_env: dict[str, str],
) -> None:
    client_for(object_store).delete_object(Bucket=stored.bucket, Key=stored.join(artifact.QUERIES_FILE).key)
    out = tmp_path / "pod" / "artifact"
    assert _download(stored, out) == (1, f"artifact {stored.uri}: file {artifact.QUERIES_FILE} is missing")
    assert not out.exists()


def test_an_artifact_without_a_manifest_was_never_committed(
    object_store: objectstore.ObjectStore, stored: s3.Location, tmp_path: Path, s3_env: dict[str, str],
) -> None:
    client_for(object_store).delete_object(Bucket=stored.bucket, Key=stored.join(artifact.MANIFEST_NAME).key)
    code, reason = _download(stored, tmp_path / "pod" / "artifact")
    assert code == 1
    assert reason.startswith(
        f"{stored.uri}: no manifest.json: the artifact does not exist or its upload never finished"
    )


def test_an_artifact_larger_than_the_local_space_is_refused(
    stored: s3.Location, tmp_path: Path, s3_env: dict[str, str],
) -> None:
    code, reason = _download(stored, tmp_path / "pod" / "artifact", "--max-bytes", "1000")
    assert code == 1
    assert reason.startswith(f"{stored.uri}: the artifact holds ") and reason.endswith(
        "bytes, more than the 1000 bytes of local space")


def test_wrong_credentials_are_named(
    stored: s3.Location, tmp_path: Path, s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    code, reason = _download(stored, tmp_path / "pod" / "artifact")
    assert code == 1
    assert "access denied" in reason and "check the credentials" in reason


def test_the_store_stopped_during_the_download_fails_within_the_deadline(
    private_object_store: objectstore.ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    built = make_artifact(tmp_path)
    bucket_name = "serving"
    client_for(private_object_store).create_bucket(Bucket=bucket_name)
    prefix = s3.Location(bucket_name, "idx/r")
    artifact_store.upload(client_for(private_object_store), built, prefix, settings=settings_for(private_object_store))
    for name, value in private_object_store.environment().items():
        monkeypatch.setenv(name, value)
    real_download = s3.download
    files: list[str] = []

    def download_then_stop(*args: object, **kwargs: object) -> s3.ObjectInfo:
        info = real_download(*args, **kwargs)  # type: ignore[arg-type]
        files.append("x")
        private_object_store.stop()
        return info

    monkeypatch.setattr(s3, "download", download_then_stop)
    code, reason = _download(prefix, tmp_path / "pod" / "artifact")
    assert code == 1
    assert reason.startswith(f"downloading the artifact {prefix.uri} failed: ")
    assert "the store is unreachable" in reason
    assert files == ["x"] and not (tmp_path / "pod" / "artifact").exists()


def test_a_store_that_never_answers_fails_at_the_deadline(tmp_path: Path) -> None:
    """A store that accepts connections and then says nothing: the download gives up at its
    deadline (not the SDK's minute-long read timeouts) with the reason, and the process ends."""
    import socket
    import subprocess
    import sys
    import time

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    port = silent.getsockname()[1]
    env = {"PATH": "/usr/bin:/bin", "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{port}", "AWS_REGION": "us-east-1",
           "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "FAISS_S3_ADDRESSING_STYLE": "path"}
    termination = tmp_path / "termination-log"
    started = time.monotonic()
    try:
        finished = subprocess.run(
            [sys.executable, "-m", "faiss_operator.cli", "download", "--artifact", "s3://b/idx/r",
             "--out", str(tmp_path / "artifact"), "--deadline-seconds", "2", "--termination-log", str(termination)],
            env=env, capture_output=True, text=True, timeout=60,
        )
    finally:
        silent.close()
    assert finished.returncode == 1, finished.stderr
    assert time.monotonic() - started < 30
    assert termination.read_text() == "downloading s3://b/idx/r took longer than the deadline of 2s"
    assert not (tmp_path / "artifact").exists()
