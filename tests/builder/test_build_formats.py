"""A build from each input format writes a complete, verifiable artifact and a compact report."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from faiss_operator import cli
from faiss_operator.index import FAISSIndex, artifact
from tests.builder.conftest import COUNT, build_args, leftovers
from tests.sources.conftest import write_fvecs


def _check_artifact(out: Path, *, recall_at_least: float) -> dict[str, object]:
    manifest = artifact.verify_artifact(out)
    names = {p.name for p in out.iterdir()}
    assert {"index.faiss", "manifest.json", "report.json", "queries.npy", "ground_truth.npy",
            "ground_truth_ids.json"} <= names
    report = json.loads((out / "report.json").read_text())
    assert report["vectors"] == COUNT and report["recall"] >= recall_at_least
    assert report["p50_ms"] <= report["p99_ms"] and report["memory_bytes"] > 0
    termination = (out.parent / "termination-log").read_bytes()
    assert len(termination) <= 4096
    assert json.loads(termination)["recall"] == report["recall"]
    assert leftovers(out.parent) == []
    assert manifest and out.stat().st_mode & 0o777 == 0o755
    return report


def test_npy_float32_with_ids_and_metadata(inputs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "rev1"
    code = cli.main(build_args(inputs / "v.npy", out, "--ids", str(inputs / "ids.txt"),
                               "--metadata", str(inputs / "meta.jsonl"), "--index-type", "HNSW",
                               "--config", '{"m": 16, "ef_search": 64}', "--revision", "rev1"))
    assert code == 0
    report = _check_artifact(out, recall_at_least=0.9)
    assert report["index_type"] == "HNSW" and report["config"]["m"] == 16 and report["revision"] == "rev1"
    loaded = FAISSIndex.load(out)
    queries = np.load(out / "queries.npy")
    hits = loaded.search(queries[:1], k=3)[0]
    assert hits.ids[0].startswith("doc-") and hits.metadata[0]["id"] == hits.ids[0]
    truth_ids = json.loads((out / "ground_truth_ids.json").read_text())
    assert len(truth_ids) == 100 and truth_ids[0][0].startswith("doc-")


def test_float16_npy(inputs: Path, tmp_path: Path, vectors: np.ndarray) -> None:
    np.save(inputs / "half.npy", vectors.astype(np.float16))
    out = tmp_path / "out" / "half"
    assert cli.main(build_args(inputs / "half.npy", out, "--index-type", "Flat")) == 0
    assert _check_artifact(out, recall_at_least=0.99)["recall"] == 1.0


def test_fvecs_and_int64_ids(inputs: Path, tmp_path: Path, vectors: np.ndarray) -> None:
    write_fvecs(inputs / "v.fvecs", vectors)
    np.save(inputs / "ids.npy", np.arange(COUNT, dtype=np.int64) * 7)
    out = tmp_path / "out" / "fvecs"
    assert cli.main(build_args(inputs / "v.fvecs", out, "--ids", str(inputs / "ids.npy"), "--index-type", "IVF",
                               "--config", '{"nlist": 16, "nprobe": 16}')) == 0
    _check_artifact(out, recall_at_least=0.99)
    hits = FAISSIndex.load(out).search(vectors[:1], k=1)[0]
    assert hits.ids[0] % 7 == 0


@pytest.fixture
def file_server(inputs: Path) -> Iterator[str]:
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(inputs))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_http_source(file_server: str, tmp_path: Path) -> None:
    out = tmp_path / "out" / "http"
    assert cli.main(build_args(f"{file_server}/v.npy", out, "--ids", f"{file_server}/ids.txt", "--index-type", "Flat")) == 0
    _check_artifact(out, recall_at_least=0.99)


def test_existing_artifact_is_kept_unless_overwrite(inputs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "rev"
    assert cli.main(build_args(inputs / "v.npy", out, "--index-type", "Flat")) == 0
    before = (out / "manifest.json").read_bytes()
    assert cli.main(build_args(inputs / "v.npy", out, "--index-type", "Flat")) == 30
    assert (out / "manifest.json").read_bytes() == before
    assert cli.main(build_args(inputs / "v.npy", out, "--index-type", "HNSW", "--overwrite")) == 0
    assert json.loads((out / "report.json").read_text())["index_type"] == "HNSW"
    assert leftovers(out.parent) == []


def test_index_type_and_config_from_the_environment(inputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAISS_INDEX_TYPE", "IVF")
    monkeypatch.setenv("FAISS_NLIST", "8")
    monkeypatch.setenv("FAISS_CONFIG_NPROBE", "8")
    out = tmp_path / "out" / "env"
    assert cli.main(build_args(inputs / "v.npy", out)) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["index_type"] == "IVF" and report["config"]["nlist"] == 8 and report["config"]["nprobe"] == 8
    assert report["config_sources"]["nlist"] == "env:FAISS_NLIST"


@pytest.mark.parametrize("ending", ["\n", "\r\n"])
def test_ids_and_metadata_saved_with_a_bom_crlf_and_a_trailing_blank_line(
    inputs: Path, tmp_path: Path, ending: str
) -> None:
    """Windows' "UTF-8 with BOM": the first id is doc-0, not "\\ufeffdoc-0", and metadata lines up."""
    bom = "\ufeff"
    ids = [f"doc-{i}" for i in range(COUNT)]
    (inputs / "bom.txt").write_bytes((bom + ending.join(ids) + ending + ending).encode())
    lines = [json.dumps({"id": f"doc-{i}", "n": i}) for i in range(COUNT)]
    (inputs / "bom.jsonl").write_bytes((bom + ending.join(lines) + ending + ending).encode())
    out = tmp_path / "out" / "rev"
    assert cli.main(build_args(inputs / "v.npy", out, "--index-type", "Flat", "--ids", str(inputs / "bom.txt"),
                               "--metadata", str(inputs / "bom.jsonl"))) == 0
    index = FAISSIndex.load(out)
    assert index.id_map.ids() == ids
    hit = index.search(np.load(inputs / "v.npy")[0], k=1)[0]
    assert (hit.ids, hit.metadata) == (["doc-0"], [{"id": "doc-0", "n": 0}])
