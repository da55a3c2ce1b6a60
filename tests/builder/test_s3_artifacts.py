"""A build with `--out s3://bucket/prefix` against a real S3 server: every file uploaded, the
manifest last; a failed upload leaves nothing that could serve; the report names the reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from e2e.harness import objectstore
from faiss_operator import cli
from faiss_operator.builder import exit_codes
from faiss_operator.index import artifact
from faiss_operator.sources import artifact_store
from tests.builder.conftest import build_args
from tests.s3_store import client_for, new_bucket, settings_for


def _keys(store: objectstore.ObjectStore, bucket: str) -> list[str]:
    answer = client_for(store).list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in answer.get("Contents", []))


def test_a_build_from_s3_to_s3_uploads_every_file_and_the_manifest_last(
    object_store: objectstore.ObjectStore, bucket: str, inputs: Path, tmp_path: Path, s3_env: dict[str, str],
) -> None:
    client = client_for(object_store)
    for name in ("v.npy", "ids.txt", "meta.jsonl"):
        client.upload_file(str(inputs / name), bucket, f"embeddings/{name}")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    termination = tmp_path / "termination-log"

    code = cli.main([
        "build", "--source", f"s3://{bucket}/embeddings/v.npy", "--ids", f"s3://{bucket}/embeddings/ids.txt",
        "--metadata", f"s3://{bucket}/embeddings/meta.jsonl", "--out", f"s3://{bucket}/artifacts/idx/ab12",
        "--scratch", str(scratch), "--termination-log", str(termination), "--eval-queries", "100",
        "--index-type", "Flat", "--revision", "ab12",
    ])

    assert code == 0
    report = json.loads(termination.read_text())
    assert report["artifact"] == f"s3://{bucket}/artifacts/idx/ab12"
    assert report["status"] == "Succeeded" and report["vectors"] == 3000
    stored = [k for k in _keys(object_store, bucket) if k.startswith("artifacts/")]
    downloaded = tmp_path / "copy"
    manifest = artifact_store.download(client, artifact_store.s3.Location(bucket, "artifacts/idx/ab12"), downloaded,
                                       settings=settings_for(object_store), max_bytes=1 << 30)
    assert stored == sorted(f"artifacts/idx/ab12/{name}" for name in [*manifest["files"], artifact.MANIFEST_NAME])
    assert manifest["revision"] == "ab12"
    assert report["artifact_bytes"] == sum(entry["bytes"] for entry in manifest["files"].values())
    assert list(scratch.iterdir()) == []  # the local build is gone once uploaded


def test_a_second_build_to_a_finished_artifact_is_refused_unless_overwrite(
    object_store: objectstore.ObjectStore, bucket: str, inputs: Path, tmp_path: Path, s3_env: dict[str, str],
) -> None:
    out = f"s3://{bucket}/idx/r1"
    first = build_args(inputs / "v.npy", tmp_path / "unused", "--index-type", "Flat")
    first[first.index("--out") + 1] = out
    assert cli.main(first) == 0

    assert cli.main(first) == exit_codes.ExitCode.OUTPUT_EXISTS
    report = json.loads((tmp_path / "termination-log").read_text())
    assert report["error"] == f"{out} already holds a finished artifact; pass --overwrite to replace it"

    assert cli.main([*first, "--overwrite"]) == 0


def test_a_store_that_fails_during_the_upload_leaves_no_manifest(
    private_object_store: objectstore.ObjectStore, inputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The store goes away after the first file: the build fails with the reason, and what the
    store holds when it is back is no artifact (no manifest; the partial files deleted if it could)."""
    bucket = new_bucket(private_object_store)
    for name, value in private_object_store.environment().items():
        monkeypatch.setenv(name, value)
    uploaded: list[str] = []
    real_upload = artifact_store.s3.upload

    def upload_then_stop(client: object, source: Path, location: artifact_store.s3.Location, **kw: object) -> None:
        real_upload(client, source, location, **kw)  # type: ignore[arg-type]
        uploaded.append(location.key)
        private_object_store.stop()

    monkeypatch.setattr(artifact_store.s3, "upload", upload_then_stop)
    args = build_args(inputs / "v.npy", tmp_path / "unused", "--index-type", "Flat", "--download-attempts", "1")
    args[args.index("--out") + 1] = f"s3://{bucket}/idx/r1"

    code = cli.main(args)

    assert code == exit_codes.ExitCode.ARTIFACT_UPLOAD_FAILED
    report = json.loads((tmp_path / "termination-log").read_text())
    assert report["reason"] == "ARTIFACT_UPLOAD_FAILED"
    assert report["error"].startswith(f"uploading the artifact to s3://{bucket}/idx/r1 failed: ")
    assert "the store is unreachable" in report["error"]
    assert len(uploaded) == 1
    private_object_store.start()
    assert artifact.MANIFEST_NAME not in {k.rsplit("/", 1)[-1] for k in _keys(private_object_store, bucket)}


def test_a_failed_upload_deletes_the_partial_prefix(
    object_store: objectstore.ObjectStore, bucket: str, inputs: Path, tmp_path: Path, s3_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The store answers but refuses the manifest (here: a file that vanished from scratch):
    the files already uploaded are deleted, so the prefix is empty."""
    real_upload = artifact_store.s3.upload

    def refuse_manifest(client: object, source: Path, location: artifact_store.s3.Location, **kw: object) -> None:
        if location.key.endswith(artifact.MANIFEST_NAME):
            raise artifact_store.errors.SourceFetchError(f"{location.uri}: refused")
        real_upload(client, source, location, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(artifact_store.s3, "upload", refuse_manifest)
    args = build_args(inputs / "v.npy", tmp_path / "unused", "--index-type", "Flat")
    args[args.index("--out") + 1] = f"s3://{bucket}/idx/r2"

    assert cli.main(args) == exit_codes.ExitCode.ARTIFACT_UPLOAD_FAILED
    assert _keys(object_store, bucket) == []


def test_an_artifact_prefix_must_be_inside_a_bucket(
    object_store: objectstore.ObjectStore, bucket: str, inputs: Path, tmp_path: Path, s3_env: dict[str, str],
) -> None:
    args = build_args(inputs / "v.npy", tmp_path / "unused")
    args[args.index("--out") + 1] = f"s3://{bucket}"
    assert cli.main(args) == exit_codes.ExitCode.OUTPUT_FAILED
    assert json.loads((tmp_path / "termination-log").read_text())["error"] == (
        f"s3://{bucket}: an artifact needs a prefix inside the bucket (s3://<bucket>/<prefix>)"
    )
