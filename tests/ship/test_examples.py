"""examples/: every manifest is valid (FaissIndex by `faiss-operator validate`, the rest by the
Kubernetes 1.37 schemas), the migration files tell the seed guide's story, and the embeddings
loader Job's program really loads, and refuses, files served over HTTP."""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import numpy as np
import pytest
import yaml
from faiss_operator.api import resource, validate

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
FILES = sorted(EXAMPLES.rglob("*.yaml"))
KUBERNETES = "1.37.0"


def _objects(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def test_there_is_an_example_per_index_type() -> None:
    types = [_objects(p)[0]["spec"]["indexType"] for p in sorted((EXAMPLES / "indexes").glob("*.yaml"))]
    assert sorted(types) == sorted(["Flat", "IVF", "IVFPQ", "HNSW", "OPQ+HNSW"])


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_every_example_is_valid(path: Path) -> None:
    report = validate.validate_text(path.read_text(), source=str(path))
    assert report.problems == ()
    for obj in _objects(path):
        if obj["kind"] == resource.KIND:
            continue
        kubernetes_validate.validate(obj, KUBERNETES, strict=True)  # raises ValidationError


def test_kubernetes_validate_refuses_what_the_api_server_would() -> None:
    (job,) = _objects(EXAMPLES / "storage" / "embeddings-loader-job.yaml")
    job["spec"]["template"]["spec"]["restartPolicy"] = 7
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, KUBERNETES, strict=True)


def test_the_migration_is_one_faissindex_moving_from_ivf_to_hnsw_to_opq_hnsw() -> None:
    steps = [_objects(p)[0] for p in sorted((EXAMPLES / "migration").glob("*.yaml"))]
    assert {(s["metadata"]["namespace"], s["metadata"]["name"]) for s in steps} == {("search", "alerts")}
    assert [s["spec"]["indexType"] for s in steps] == ["IVF", "HNSW", "OPQ+HNSW"]
    # The v0.8 settings of the seed guide, then its v0.9 custom configuration.
    assert steps[0]["spec"]["config"] == {"nlist": 100, "nprobe": 10}
    assert steps[1]["spec"]["config"] == {"m": 32, "efConstruction": 200, "efSearch": 64}
    # Each step is a canary: at least one step below 100%.
    assert all(s["spec"]["rollout"]["steps"][0]["weight"] < 100 for s in steps)


def test_every_claim_the_examples_use_is_an_example_too() -> None:
    claims = {o["metadata"]["name"] for p in FILES for o in _objects(p) if o["kind"] == "PersistentVolumeClaim"}
    used = set()
    for path in FILES:
        for obj in _objects(path):
            if obj["kind"] == resource.KIND:
                uris = [obj["spec"]["source"]["uri"], obj["spec"].get("artifacts", {}).get("uri", "pvc://faiss-artifacts")]
                used |= {uri.removeprefix("pvc://").split("/")[0] for uri in uris if uri.startswith("pvc://")}
            if obj["kind"] == "Job":
                used |= {v["persistentVolumeClaim"]["claimName"] for v in obj["spec"]["template"]["spec"]["volumes"]}
    assert used == claims


def test_the_object_storage_example_names_its_secret_and_no_key() -> None:
    secret, index = _objects(EXAMPLES / "object-storage" / "alerts-s3.yaml")
    assert secret["kind"] == "Secret" and sorted(secret["stringData"]) == ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
    store = index["spec"]["objectStore"]
    assert store["credentialsSecretRef"] == {"name": secret["metadata"]["name"]}
    assert secret["metadata"]["namespace"] == index["metadata"]["namespace"]
    assert index["spec"]["source"]["uri"].startswith("s3://") and index["spec"]["artifacts"]["uri"].startswith("s3://")


# --- the loader Job's program, run as its container runs it, against a real HTTP server ---

LOADER = _objects(EXAMPLES / "storage" / "embeddings-loader-job.yaml")[0]["spec"]["template"]["spec"]["containers"][0]


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _load(url: str, target: Path, dimension: int) -> subprocess.CompletedProcess[str]:
    assert LOADER["command"] == ["python", "-c"]
    env = {**os.environ, "EMBEDDINGS_URL": url, "TARGET": str(target), "DIMENSION": str(dimension)}
    return subprocess.run(
        [sys.executable, "-c", LOADER["args"][0]], env=env, capture_output=True, text=True, timeout=120
    )


def test_the_loader_loads_a_served_file(served: tuple[str, Path], tmp_path: Path) -> None:
    url, root = served
    vectors = np.random.default_rng(0).standard_normal((50, 8)).astype(np.float32)
    np.save(root / "v1.npy", vectors)
    target = tmp_path / "pvc" / "alerts" / "v1.npy"
    run = _load(f"{url}/v1.npy", target, 8)
    assert run.returncode == 0, run.stderr
    assert run.stdout == f"Loaded 50 vectors of dimension 8 into {target}\n"
    np.testing.assert_array_equal(np.load(target), vectors)
    assert sorted(p.name for p in target.parent.iterdir()) == ["v1.npy"]


@pytest.mark.parametrize(
    ("served_file", "message"),
    [
        ("wrong-dimension.npy", "vectors have dimension 4, expected 8"),
        ("nan.npy", "NaN"),
        ("missing.npy", "404"),
    ],
)
def test_the_loader_refuses_a_bad_file_and_keeps_what_was_loaded(
    served: tuple[str, Path], tmp_path: Path, served_file: str, message: str
) -> None:
    url, root = served
    np.save(root / "wrong-dimension.npy", np.ones((10, 4), dtype=np.float32))
    with_nan = np.ones((10, 8), dtype=np.float32)
    with_nan[3, 2] = np.nan
    np.save(root / "nan.npy", with_nan)
    target = tmp_path / "pvc" / "v1.npy"
    target.parent.mkdir()
    np.save(target, np.zeros((5, 8), dtype=np.float32))
    before = target.read_bytes()
    run = _load(f"{url}/{served_file}", target, 8)
    assert run.returncode == 1
    assert run.stderr.startswith("Loading failed: ") and message in run.stderr, run.stderr
    assert target.read_bytes() == before
    assert sorted(p.name for p in target.parent.iterdir()) == ["v1.npy"]


def test_the_loader_runs_the_operator_image() -> None:
    from faiss_operator.controller.decision import settings

    assert LOADER["image"] == settings.DEFAULT_IMAGE


# Recall@10 of the v0.8 IVF setup (nlist 100, nprobe 10) on `make demo`'s sentence embeddings, as
# measured by the demo at its smallest size (2,000 vectors: 0.855; 20,000: 0.894); see
# docs/migration-from-v0.8.md. The demo's data needs the demo extra, so the figure is recorded here.
V08_IVF_MEASURED_RECALL = 0.855


def test_the_v08_ivf_example_meets_its_own_recall_gate() -> None:
    # Issue 19, item 7: 01-ivf.yaml gated at 0.9 refused the very setup it describes.
    spec = _objects(EXAMPLES / "migration" / "01-ivf.yaml")[0]["spec"]
    assert (spec["indexType"], spec["config"]) == ("IVF", {"nlist": 100, "nprobe": 10})
    assert spec["evaluation"]["minRecall"] <= V08_IVF_MEASURED_RECALL
