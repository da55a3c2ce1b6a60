"""`faiss-operator import`: a seed index written by faiss.write_index becomes an artifact that
`load_index` and `serve` take (issue 19, item 6: `load_index` on such a file said only
"manifest.json is missing"). Real FAISS files, the real CLI, the real server over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import faiss
import numpy as np
import pytest
from faiss_operator import cli
from faiss_operator.index import FAISSIndex, artifact

from tests.server.conftest import running_server

DIMENSION = 16


def _seed_ivf(tmp_path: Path, count: int = 2000) -> tuple[Path, np.ndarray]:
    data = np.random.default_rng(3).standard_normal((count, DIMENSION)).astype(np.float32)
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatL2(DIMENSION), DIMENSION, 20)
    ivf.train(data)
    ivf.add(data)
    ivf.nprobe = 20
    path = tmp_path / "alerts.faiss"
    faiss.write_index(ivf, str(path))
    return path, data


def test_load_index_on_a_plain_faiss_file_still_says_the_manifest_is_missing(tmp_path: Path) -> None:
    path, _ = _seed_ivf(tmp_path)
    directory = tmp_path / "plain"
    directory.mkdir()
    path.rename(directory / "index.faiss")
    with pytest.raises(artifact.ArtifactError, match="manifest.json is missing"):
        FAISSIndex.load(directory)


def test_an_ivf_index_with_ids_and_metadata_is_imported_and_searches_as_before(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, data = _seed_ivf(tmp_path)
    (tmp_path / "ids.txt").write_text("".join(f"alert-{i}\n" for i in range(len(data))))
    (tmp_path / "meta.jsonl").write_text("".join(json.dumps({"id": f"alert-{i}", "n": i}) + "\n" for i in range(len(data))))
    out = tmp_path / "artifact"
    assert cli.main(["import", "--index", str(path), "--out", str(out), "--ids", str(tmp_path / "ids.txt"),
                     "--metadata", str(tmp_path / "meta.jsonl"), "--revision", "seed-ivf"]) == 0
    assert capsys.readouterr().out == f"Imported 2000 vectors of dimension 16 as IVF (IVF20,Flat, L2) into {out}\n"
    manifest = artifact.verify_artifact(out)
    assert (manifest["index_type"], manifest["config"]["nlist"], manifest["config"]["nprobe"], manifest["revision"]) == (
        "IVF", 20, 20, "seed-ivf")
    loaded = FAISSIndex.load(out)
    seed = faiss.read_index(str(path))
    _, positions = seed.search(data[:5], 3)
    results = loaded.search(data[:5], k=3)
    assert [r.ids for r in results] == [[f"alert-{p}" for p in row] for row in positions.tolist()]
    assert results[0].metadata[0] == {"id": "alert-0", "n": 0}


def test_the_imported_artifact_is_served(tmp_path: Path) -> None:
    path, data = _seed_ivf(tmp_path, count=500)
    out = tmp_path / "artifact"
    assert cli.main(["import", "--index", str(path), "--out", str(out)]) == 0
    with running_server(out, tmp_path / "serve.log", "--workers", "1") as server:
        server.wait_for("/readyz", 200)
        answer = server.search({"vector": data[7].tolist(), "k": 1})
        assert answer.status == 200, answer.body
        assert answer.json()["ids"] == [7]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: faiss.write_index(faiss.IndexLSH(DIMENSION, 32), str(p)),
         "cannot import a IndexLSH: supported are IndexFlat (Flat), IndexIVFFlat (IVF), IndexIVFPQ (IVFPQ), "
         "IndexHNSWFlat (HNSW), or an IndexIDMap of one"),
        (lambda p: p.write_text("not an index"), "not a FAISS index file (faiss.read_index refused it)"),
    ],
)
def test_what_cannot_be_imported_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: object, message: str
) -> None:
    path = tmp_path / "x.faiss"
    make(path)  # type: ignore[operator]
    assert cli.main(["import", "--index", str(path), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.endswith(message + "\n") and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_ids_that_do_not_fit_are_refused_naming_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = _seed_ivf(tmp_path, count=300)
    (tmp_path / "ids.txt").write_text("a\nb\n")
    assert cli.main(["import", "--index", str(path), "--out", str(tmp_path / "out"), "--ids", str(tmp_path / "ids.txt")]) == 1
    assert capsys.readouterr().err == (
        f"faiss-operator import: {tmp_path / 'ids.txt'}: 2 ids for 300 vectors; expected one id per vector\n"
    )
