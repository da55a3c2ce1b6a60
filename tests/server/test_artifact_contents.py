"""The no-500 promise covers what an artifact holds, not only what a client sends.

Ids and metadata at the edges of what JSON encoders represent come back exactly; an artifact
holding a value beyond them (written by a build that let it in) keeps the pod unready with the
file and line named, like a corrupt artifact, instead of answering 500 to the query that hits it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from faiss_operator.index import FAISSIndex, artifact

from tests.server.conftest import DIMENSION, running_server

EDGE_IDS = [-(2**63), 2**63 - 1, 7]
EDGE_METADATA = [{"u64": 2**64 - 1, "i64": -(2**63), "big": 1.5e308}, None, {"nested": {"list": [1, "é"]}}]


def _artifact(directory: Path) -> tuple[Path, np.ndarray]:
    vectors = np.random.default_rng(5).standard_normal((3, DIMENSION)).astype(np.float32)
    index = FAISSIndex(DIMENSION, "Flat", env={})
    index.add_embeddings(vectors, ids=EDGE_IDS, metadata=EDGE_METADATA)
    index.save_index(directory / "a")
    return directory / "a", vectors


def test_ids_and_metadata_at_the_edges_are_served_exactly(tmp_path: Path) -> None:
    path, vectors = _artifact(tmp_path)
    with running_server(path, tmp_path / "server.log") as server:
        server.wait_for("/readyz", 200)
        answer = server.search({"vectors": vectors.tolist(), "k": 1, "include_metadata": True})
    assert answer.status == 200
    results = answer.json()["results"]
    assert [r["ids"] for r in results] == [[i] for i in EDGE_IDS]
    assert [r["metadata"] for r in results] == [[m] for m in EDGE_METADATA]


@pytest.mark.parametrize(
    ("name", "text", "reason"),
    [
        ("ids.json", json.dumps([-(2**63), 2**64 + 5, 7]), "ids.json[1]: id 18446744073709551621 is outside the int64 range"),
        ("ids.json", json.dumps([-(2**63) - 1, 1, 7]), "ids.json[0]: id -9223372036854775809 is outside the int64 range"),
        ("metadata.jsonl", 'null\n{"account": 18446744073709551618}\nnull\n',
         "metadata.jsonl line 2: account: the integer 18446744073709551618 does not fit 64 bits"),
        ("metadata.jsonl", '{"score": NaN}\nnull\nnull\n', "metadata.jsonl line 1: score: nan is not a finite number"),
        ("report.json", '{"recall": 0.9, "memory_bytes": 36893488147419103232}',
         "report.json is not usable: report.json: memory_bytes: the integer 36893488147419103232 does not fit 64 bits"),
        ("report.json", "[1, 2]", "report.json is not usable: not a JSON object"),
    ],
)
def test_an_artifact_holding_an_unrepresentable_value_stays_unready(
    tmp_path: Path, name: str, text: str, reason: str
) -> None:
    path, vectors = _artifact(tmp_path)
    (path / name).write_text(text)
    manifest = artifact.read_manifest(path)
    artifact.write_manifest(path, **{k: v for k, v in manifest.items() if k not in ("files", "format_version")})
    with running_server(path, tmp_path / "server.log") as server:
        answer = server.wait_for_phase("Failed")
        search = server.search({"vector": vectors[1].tolist(), "k": 1, "include_metadata": True})
    assert answer.status == 503 and reason in answer.json()["reason"]
    assert search.status == 503
    assert "staying unready" in (tmp_path / "server.log").read_text()
