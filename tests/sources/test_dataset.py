from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from faiss_operator.sources import dataset, errors
from tests.sources.conftest import write_fvecs


def test_everything_from_local_files(tmp_path: Path, vectors: np.ndarray) -> None:
    write_fvecs(tmp_path / "v.fvecs", vectors)
    (tmp_path / "ids.txt").write_text("".join(f"doc-{i}\n" for i in range(50)))
    (tmp_path / "m.jsonl").write_text("".join(json.dumps({"id": f"doc-{i}", "n": i}) + "\n" for i in reversed(range(50))))
    loaded = dataset.load_dataset(
        embeddings_uri=f"file://{tmp_path}/v.fvecs",
        ids_uri=str(tmp_path / "ids.txt"),
        metadata_uri=str(tmp_path / "m.jsonl"),
        dimension=8,
        download_dir=tmp_path / "dl",
    )
    assert (loaded.count, loaded.dimension) == (50, 8)
    assert loaded.ids is not None and loaded.ids[3] == "doc-3"
    assert loaded.metadata is not None and loaded.metadata[3] == {"id": "doc-3", "n": 3}


def test_metadata_without_ids_is_keyed_by_position(tmp_path: Path, vectors: np.ndarray) -> None:
    np.save(tmp_path / "v.npy", vectors)
    (tmp_path / "m.jsonl").write_text("".join(json.dumps({"id": i}) + "\n" for i in range(50)))
    loaded = dataset.load_dataset(
        embeddings_uri=str(tmp_path / "v.npy"), metadata_uri=str(tmp_path / "m.jsonl"), download_dir=tmp_path
    )
    assert loaded.ids is None and loaded.metadata is not None and loaded.metadata[49] == {"id": 49}


def test_pvc_uri_reads_under_the_root(tmp_path: Path, vectors: np.ndarray) -> None:
    (tmp_path / "embeddings" / "alerts").mkdir(parents=True)
    np.save(tmp_path / "embeddings" / "alerts" / "v.npy", vectors)
    loaded = dataset.load_dataset(
        embeddings_uri="pvc://embeddings/alerts/v.npy", download_dir=tmp_path, env={"FAISS_PVC_ROOT": str(tmp_path)}
    )
    assert loaded.count == 50


def test_validation_order_dimension_before_values(tmp_path: Path, vectors: np.ndarray) -> None:
    vectors[0, 0] = np.nan
    np.save(tmp_path / "v.npy", vectors)
    with pytest.raises(errors.DimensionMismatchError):
        dataset.load_dataset(embeddings_uri=str(tmp_path / "v.npy"), dimension=16, download_dir=tmp_path)
    with pytest.raises(errors.NonFiniteValuesError, match="1 of 50"):
        dataset.load_dataset(embeddings_uri=str(tmp_path / "v.npy"), dimension=8, download_dir=tmp_path)
