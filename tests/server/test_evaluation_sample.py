"""GET /v1/evaluation-sample: the stored query sample and ground truth, as the live prober reads it;
probe traffic (X-Faiss-Probe: 1) counted under its own label."""

from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path

import numpy as np
import pytest

from faiss_operator.builder import pipeline
from faiss_operator.index import artifact as index_artifact
from tests.server.conftest import DEADLINE_S, DIMENSION, Server, make_artifact, running_server

SAMPLE = "/v1/evaluation-sample"


def test_the_sample_is_the_artifacts_own_queries_truth_and_rows(server: Server, artifact: Path) -> None:
    answer = server.request("GET", SAMPLE)

    assert answer.status == 200 and answer.headers["content-type"] == "application/json"
    document = answer.json()
    queries = np.load(artifact / "queries.npy")
    rows = np.load(artifact / "query_rows.npy")
    assert {key: document[key] for key in ("revision", "k", "metric", "normalize", "dimension", "count", "total")} == {
        "revision": "rev-test", "k": 10, "metric": "L2", "normalize": False, "dimension": DIMENSION,
        "count": 50, "total": 50,
    }
    assert np.array_equal(np.array(document["queries"], dtype=np.float32), queries)  # bit for bit
    assert document["groundTruthIds"] == json.loads((artifact / "ground_truth_ids.json").read_text())
    assert document["queryRows"] == rows.tolist()
    assert document["queryIds"] == [f"doc-{row}" for row in rows.tolist()]
    # the truth already leaves each query's own row out, as the build's recall did
    assert all(own not in truth for own, truth in zip(document["queryIds"], document["groundTruthIds"]))


def test_the_float32_form_carries_the_same_queries_exactly(server: Server, artifact: Path) -> None:
    document = server.request("GET", SAMPLE + "?encoding=float32&limit=7").json()

    assert "queries" not in document and document["count"] == 7 and document["total"] == 50
    decoded = np.frombuffer(base64.b64decode(document["queriesFloat32"]), dtype="<f4").reshape(7, DIMENSION)
    assert np.array_equal(decoded, np.load(artifact / "queries.npy")[:7])
    assert len(document["groundTruthIds"]) == len(document["queryRows"]) == len(document["queryIds"]) == 7


def test_limit_gives_the_first_queries(server: Server) -> None:
    whole = server.request("GET", SAMPLE).json()
    part = server.request("GET", SAMPLE + "?limit=3").json()

    assert part["count"] == 3 and part["total"] == 50
    assert part["queries"] == whole["queries"][:3] and part["groundTruthIds"] == whole["groundTruthIds"][:3]
    assert part["queryIds"] == whole["queryIds"][:3]
    assert server.request("GET", SAMPLE + "?limit=10000").json()["count"] == 50  # capped by what there is


@pytest.mark.parametrize(("query", "message"), [
    ("limit=0", "limit: expected an integer from 1 to 10000, got '0'"),
    ("limit=10001", "limit: expected an integer from 1 to 10000, got '10001'"),
    ("limit=ten", "limit: expected an integer from 1 to 10000, got 'ten'"),
    ("limit=-1", "limit: expected an integer from 1 to 10000, got '-1'"),
    ("encoding=xml", "encoding: expected one of json, float32, got 'xml'"),
    ("limit=1&limit=2", "query parameter 'limit' given more than once"),
    ("k=5", "unknown query parameter 'k'; valid: encoding, limit"),
    ("limit", "malformed query string 'limit'"),
])
def test_bad_parameters_are_refused_with_400(server: Server, query: str, message: str) -> None:
    answer = server.request("GET", f"{SAMPLE}?{query}")

    assert (answer.status, answer.json()) == (400, {"error": message})


def test_only_get_is_allowed(server: Server) -> None:
    assert server.request("POST", SAMPLE, b"{}").status == 405


def test_probe_requests_are_counted_under_their_own_label(server: Server) -> None:
    def counted(text: str, endpoint: str, source: str) -> float:
        found = re.search(rf'faiss_requests_total{{code="200",endpoint="{endpoint}",source="{source}"}} (\S+)', text)
        return float(found.group(1)) if found else 0.0

    before = server.request("GET", "/metrics").body.decode()
    probe = {"X-Faiss-Probe": "1", "Content-Type": "application/json"}
    assert server.request("GET", SAMPLE + "?limit=1", headers=probe).status == 200
    for _ in range(3):
        assert server.request("POST", "/v1/search", json.dumps({"vector": [0.0] * DIMENSION}).encode(), probe).status == 200
    assert server.search({"vector": [0.0] * DIMENSION}).status == 200  # a user's

    def added() -> tuple[float, float, float]:
        after = server.request("GET", "/metrics").body.decode()

        def delta(endpoint: str, source: str) -> float:
            return counted(after, endpoint, source) - counted(before, endpoint, source)

        return delta("evaluation-sample", "probe"), delta("search", "probe"), delta("search", "client")

    # The server runs a process per CPU: a request answered by one process is in the counts that
    # another's /metrics shows once the first has flushed them (right after its answer; later under load).
    deadline = time.monotonic() + DEADLINE_S
    while (counts := added()) != (1, 3, 1) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert counts == (1, 3, 1)
    assert 'faiss_request_duration_seconds_count{endpoint="search",source="probe"}' in (
        server.request("GET", "/metrics").body.decode()
    )


def test_held_out_queries_have_no_rows_to_leave_out(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    np.save(tmp_path / "v.npy", rng.standard_normal((500, DIMENSION)).astype(np.float32))
    np.save(tmp_path / "q.npy", rng.standard_normal((20, DIMENSION)).astype(np.float32))
    out = tmp_path / "artifact"
    pipeline.build(pipeline.BuildRequest(
        source=str(tmp_path / "v.npy"), queries=str(tmp_path / "q.npy"), out=out, index_type="Flat", k=5, env={},
    ))
    with running_server(out, tmp_path / "log") as server:
        server.wait_for("/readyz", 200)
        document = server.request("GET", SAMPLE).json()

    assert document["queryRows"] is None and document["queryIds"] is None
    assert document["k"] == 5 and document["count"] == 20
    assert document["groundTruthIds"] == json.loads((out / "ground_truth_ids.json").read_text())


def test_an_artifact_without_a_sample_answers_404(tmp_path: Path) -> None:
    artifact = make_artifact(tmp_path, index_type="Flat", count=300)
    strip_sample(artifact)
    with running_server(artifact, tmp_path / "log") as server:
        server.wait_for("/readyz", 200)
        answer = server.request("GET", SAMPLE)

    assert (answer.status, answer.json()) == (404, {
        "error": "no evaluation sample: artifact of revision rev-test stores no evaluation sample "
                 "(queries.npy is absent)",
    })


def test_before_ready_the_sample_is_503(tmp_path: Path) -> None:
    artifact = make_artifact(tmp_path, index_type="Flat", count=300)
    (artifact / "index.faiss").write_bytes((artifact / "index.faiss").read_bytes()[:-10])  # never gets ready
    with running_server(artifact, tmp_path / "log") as server:
        server.wait_for_phase("Failed")
        answer = server.request("GET", SAMPLE)

    assert answer.status == 503 and answer.json()["error"].startswith("not ready: Failed: artifact")


def strip_sample(artifact: Path) -> None:
    """An artifact as an older build wrote it: no query sample, still a valid manifest."""
    for name in ("queries.npy", "query_rows.npy", "ground_truth.npy", "ground_truth_ids.json"):
        (artifact / name).unlink()
    manifest = index_artifact.read_manifest(artifact)
    index_artifact.write_manifest(artifact, **{k: v for k, v in manifest.items() if k not in ("files", "format_version")})


def rewrite_manifest(artifact: Path) -> None:
    manifest = index_artifact.read_manifest(artifact)
    index_artifact.write_manifest(artifact, **{k: v for k, v in manifest.items() if k not in ("files", "format_version")})


@pytest.mark.parametrize(("damage", "message"), [
    ("fewer queries", "queries, ground truth and query rows do not match (10 queries, 50 ground-truth rows of at least 10)"),
    ("truth not lists", "ground_truth_ids.json is not a list of lists"),
])
def test_a_sample_that_does_not_fit_is_404_with_the_reason(tmp_path: Path, damage: str, message: str) -> None:
    artifact = make_artifact(tmp_path, index_type="Flat", count=300)
    queries = np.load(artifact / "queries.npy")
    if damage == "fewer queries":
        np.save(artifact / "queries.npy", queries[:10])
    else:
        (artifact / "ground_truth_ids.json").write_text('{"a": 1}')
    rewrite_manifest(artifact)  # a consistent checksum: the pod loads it, only the sample is unusable
    with running_server(artifact, tmp_path / "log") as server:
        server.wait_for("/readyz", 200)
        answer = server.request("GET", SAMPLE)

    assert (answer.status, answer.json()) == (404, {"error": f"no evaluation sample: artifact of revision rev-test: {message}"})


def test_ground_truth_positions_alone_are_served_as_ids(tmp_path: Path) -> None:
    artifact = make_artifact(tmp_path, index_type="Flat", count=300)
    expected = json.loads((artifact / "ground_truth_ids.json").read_text())
    (artifact / "ground_truth_ids.json").unlink()
    rewrite_manifest(artifact)
    with running_server(artifact, tmp_path / "log") as server:
        server.wait_for("/readyz", 200)
        document = server.request("GET", SAMPLE).json()

    assert document["groundTruthIds"] == expected
