"""The build writes its artifact's manifest once, in memory first, after every other file: the
manifest is the artifact's commit marker, so it must never describe a half-written directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from faiss_operator import cli
from faiss_operator.contract import artifact_manifest
from faiss_operator.index import artifact
from tests.builder.conftest import build_args


def test_the_build_writes_the_manifest_once_after_every_other_file(
    inputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    present_at_each_write: list[list[str]] = []
    write_manifest = artifact.write_manifest

    def recording(directory: str | Path, **fields: Any) -> dict[str, Any]:
        present_at_each_write.append(sorted(path.name for path in Path(directory).iterdir()))
        return write_manifest(directory, **fields)

    monkeypatch.setattr(artifact, "write_manifest", recording)
    out = tmp_path / "out" / "rev1"

    code = cli.main(build_args(inputs / "v.npy", out, "--index-type", "Flat", "--k", "5", "--revision", "rev1"))

    assert code == 0
    manifest = json.loads((out / artifact.MANIFEST_NAME).read_text())
    assert present_at_each_write == [sorted(manifest["files"])]
    assert sorted(manifest["files"]) == [
        "ground_truth.npy", "ground_truth_ids.json", "ids.json", "index.faiss", "metadata.jsonl", "queries.npy",
        "query_rows.npy", "report.json",
    ]  # fmt: skip
    typed = artifact_manifest.ArtifactManifest.model_validate(manifest)
    assert (typed.format_version, typed.index_type, typed.revision, typed.num_vectors) == (1, "Flat", "rev1", 3000)
    assert typed.evaluation == artifact_manifest.Evaluation(k=5, queries=100, recall=1.0)
    assert artifact.verify_artifact(out) == manifest


def test_a_manifest_missing_a_field_is_refused_before_it_is_written(tmp_path: Path) -> None:
    (tmp_path / "index.faiss").write_bytes(b"x")
    with pytest.raises(artifact.ArtifactError, match=r"not a manifest: .*dimension"):
        artifact.write_manifest(tmp_path, index_type="Flat")
    assert not (tmp_path / artifact.MANIFEST_NAME).exists()
