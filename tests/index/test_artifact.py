"""Save and load: the round trip keeps everything, and a damaged artifact is never loaded."""

from __future__ import annotations

import json
from pathlib import Path

import faiss
import numpy as np
import pytest

from faiss_operator.index import ArtifactError, FAISSIndex, IndexStateError, artifact

from .conftest import DIMENSION


@pytest.fixture
def saved(tmp_path: Path, dataset: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple[FAISSIndex, Path]:
    base, _, _ = dataset
    index = FAISSIndex(DIMENSION, "IVF", {"nlist": 32, "nprobe": 4}, metric="InnerProduct", env={})
    ids = [f"v{i}" if i % 2 else i for i in range(len(base))]
    index.add_embeddings(base, ids=ids, metadata={ids[1]: {"lang": "en"}, ids[2]: {"n": [1, 2]}})
    path = tmp_path / "artifact"
    index.save_index(path)
    return index, path


def test_round_trip_keeps_ids_metadata_config_and_results(
    saved: tuple[FAISSIndex, Path], dataset: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> None:
    original, path = saved
    _, queries, _ = dataset
    loaded = FAISSIndex.load(path)

    assert loaded.index_type == "IVF"
    assert loaded.config == original.config
    assert loaded.metric.value == "InnerProduct"
    assert loaded.id_map.ids() == original.id_map.ids()
    assert loaded.metadata == original.metadata
    assert [r.as_dict() for r in loaded.search(queries, 5)] == [r.as_dict() for r in original.search(queries, 5)]


def test_manifest_records_versions_counts_and_checksums(saved: tuple[FAISSIndex, Path]) -> None:
    _, path = saved
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["faiss_version"] == faiss.__version__
    assert manifest["dimension"] == DIMENSION
    assert manifest["num_vectors"] == 4000
    assert manifest["num_metadata"] == 2
    assert manifest["nlist"] == 32
    assert set(manifest["files"]) == {"index.faiss", "ids.json", "metadata.jsonl"}
    assert manifest["files"]["index.faiss"]["sha256"] == artifact.sha256_of(path / "index.faiss")


def test_instance_load_index_replaces_the_contents(saved: tuple[FAISSIndex, Path]) -> None:
    _, path = saved
    index = FAISSIndex(DIMENSION, env={})
    index.load_index(path)
    assert index.index_type == "IVF"
    assert index.ntotal == 4000


def test_a_dimension_mismatch_is_refused(saved: tuple[FAISSIndex, Path]) -> None:
    _, path = saved
    with pytest.raises(ArtifactError, match="dimension 32 does not match this index's dimension 64"):
        FAISSIndex(64, env={}).load_index(path)


def test_corrupted_file_is_detected(saved: tuple[FAISSIndex, Path]) -> None:
    _, path = saved
    data = bytearray((path / "index.faiss").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (path / "index.faiss").write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="file index.faiss is corrupt"):
        FAISSIndex.load(path)


def test_truncated_file_is_detected(saved: tuple[FAISSIndex, Path]) -> None:
    _, path = saved
    content = (path / "index.faiss").read_bytes()
    (path / "index.faiss").write_bytes(content[:-100])
    with pytest.raises(ArtifactError, match="file index.faiss is truncated"):
        FAISSIndex.load(path)


def test_missing_and_extra_files_are_detected(saved: tuple[FAISSIndex, Path]) -> None:
    _, path = saved
    (path / "stray.bin").write_bytes(b"x")
    with pytest.raises(ArtifactError, match="files not in the manifest: stray.bin"):
        artifact.verify_artifact(path)
    (path / "stray.bin").unlink()
    (path / "ids.json").unlink()
    with pytest.raises(ArtifactError, match="file ids.json is missing"):
        artifact.verify_artifact(path)


def test_missing_or_broken_manifest_is_detected(saved: tuple[FAISSIndex, Path], tmp_path: Path) -> None:
    _, path = saved
    with pytest.raises(ArtifactError, match="no such directory"):
        FAISSIndex.load(tmp_path / "nowhere")
    (path / "manifest.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="manifest.json is not readable JSON"):
        FAISSIndex.load(path)
    (path / "manifest.json").unlink()
    with pytest.raises(ArtifactError, match="manifest.json is missing"):
        FAISSIndex.load(path)


def test_builder_files_are_checksummed_when_the_manifest_is_rewritten(saved: tuple[FAISSIndex, Path]) -> None:
    _, path = saved
    fields = artifact.read_manifest(path)
    fields.pop("files")
    fields.pop("format_version")
    np.save(path / "queries.npy", np.zeros((2, DIMENSION), np.float32))
    manifest = artifact.write_manifest(path, **fields, report={"recall": 0.9})
    assert "queries.npy" in manifest["files"]
    assert artifact.verify_artifact(path)["report"] == {"recall": 0.9}
    assert FAISSIndex.load(path).ntotal == 4000


def test_saving_over_an_artifact_replaces_it_but_a_foreign_directory_is_refused(
    saved: tuple[FAISSIndex, Path], tmp_path: Path, small: np.ndarray
) -> None:
    _, path = saved
    other = FAISSIndex(DIMENSION, "Flat", env={})
    other.add_embeddings(small)
    other.save_index(path)
    assert FAISSIndex.load(path).ntotal == len(small)

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ArtifactError, match="refusing to write into a non-empty directory"):
        other.save_index(foreign)
    assert (foreign / "notes.txt").read_text() == "mine"


def test_saving_an_empty_index_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(IndexStateError, match="nothing to save"):
        FAISSIndex(DIMENSION, env={}).save_index(tmp_path / "a")


def test_a_manifest_whose_metric_disagrees_with_the_index_file_is_refused(saved: tuple[FAISSIndex, Path]) -> None:
    _, path = saved
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["metric"] = "L2"  # the index was built for InnerProduct
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="the manifest says metric L2, but index.faiss was built with FAISS metric type 0"):
        FAISSIndex.load(path)


def test_load_with_manifest_returns_the_verified_manifest(saved: tuple[FAISSIndex, Path]) -> None:
    index, path = saved
    loaded, manifest = FAISSIndex.load_with_manifest(path)
    assert manifest == artifact.verify_artifact(path)
    assert loaded.ntotal == index.ntotal
