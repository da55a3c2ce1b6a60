"""The compact request form: little-endian float32 rows with k and parameters in the query string."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faiss_operator.index import FAISSIndex
from tests.server.conftest import DIMENSION, Server

BINARY = {"Content-Type": "application/octet-stream"}


def post(server: Server, body: bytes, query: str = "") -> tuple[int, dict[str, object]]:
    answer = server.request("POST", "/v1/search" + (f"?{query}" if query else ""), body, BINARY)
    assert answer.headers["content-type"] == "application/json"
    document = answer.json()
    assert isinstance(document, dict)
    return answer.status, document


def test_binary_batch_matches_in_process_search_and_json(server: Server, artifact: Path) -> None:
    index = FAISSIndex.load(artifact)
    queries = np.load(artifact / "queries.npy")[:7]
    expected = index.search(queries, k=5, params={"ef_search": 16})
    status, document = post(server, queries.astype("<f4").tobytes(), "k=5&ef_search=16")
    assert status == 200, document
    results = document["results"]
    assert isinstance(results, list)
    assert [r["ids"] for r in results] == [e.ids for e in expected]
    np.testing.assert_allclose([r["distances"] for r in results], [e.distances for e in expected], rtol=1e-5)
    as_json = server.search({"vectors": queries.tolist(), "k": 5, "params": {"ef_search": 16}}).json()
    assert as_json["results"] == results


def test_binary_defaults_and_metadata(server: Server, artifact: Path) -> None:
    query = np.load(artifact / "queries.npy")[:1]
    status, document = post(server, query.astype("<f4").tobytes(), "include_metadata=true")
    assert status == 200, document
    (result,) = document["results"]  # type: ignore[misc]
    assert len(result["ids"]) == 10 and result["metadata"][0]["id"] == result["ids"][0]


def test_content_type_with_parameters_is_still_binary(server: Server, artifact: Path) -> None:
    query = np.load(artifact / "queries.npy")[:1].astype("<f4").tobytes()
    answer = server.request("POST", "/v1/search?k=2", query, {"Content-Type": "Application/Octet-Stream; x=1"})
    assert answer.status == 200 and len(answer.json()["results"][0]["ids"]) == 2


ROW = np.full(DIMENSION, 0.1, dtype="<f4").tobytes()


def _with(value: float) -> bytes:
    row = np.full(DIMENSION, 0.1, dtype="<f4")
    row[3] = value
    return ROW + row.tobytes()


CASES = [
    ("empty body", b"", "", 400, "the body is empty"),
    ("partial vector", ROW[:-4], "", 400, f"not a whole number of vectors of {4 * DIMENSION} bytes"),
    ("trailing bytes", ROW + b"\x00", "", 400, "not a whole number of vectors"),
    ("NaN", _with(float("nan")), "", 400, "vectors[1] holds NaN or an infinity"),
    ("infinity", _with(float("inf")), "", 400, "vectors[1] holds NaN or an infinity"),
    ("batch too large", ROW * 65, "", 413, "65 vectors in one request is more than the limit of 64"),
    ("k zero", ROW, "k=0", 400, "k: must be >= 1"),
    ("k negative", ROW, "k=-2", 400, "k: must be >= 1"),
    ("k above limit", ROW, "k=101", 400, "k=101 is above the limit of 100"),
    ("k not integer", ROW, "k=ten", 400, "k: must be an integer, got 'ten'"),
    ("k empty", ROW, "k=", 400, "k: must be an integer"),
    ("k twice", ROW, "k=1&k=2", 400, "'k' given more than once"),
    ("unknown param", ROW, "nprobe=4", 400, "params.nprobe: not a search-time parameter of index type 'HNSW'"),
    ("param out of range", ROW, "ef_search=0", 400, "ef_search"),
    ("param not integer", ROW, "ef_search=1.5", 400, "params.ef_search: expected a positive integer, got '1.5'"),
    ("bad metadata flag", ROW, "include_metadata=yes", 400, "include_metadata: expected true or false"),
    ("malformed query", ROW, "k", 400, "malformed query string"),
]


@pytest.mark.parametrize(("name", "body", "query", "status", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_binary_request(server: Server, name: str, body: bytes, query: str, status: int, message: str) -> None:
    answer_status, document = post(server, body, query)
    assert answer_status == status, document
    assert message in str(document["error"])


def test_binary_body_over_the_byte_limit(server: Server) -> None:
    answer = server.request("POST", "/v1/search", ROW * 4000, BINARY)  # 256 kB > --max-body-bytes 200000
    assert answer.status == 413 and "larger than the limit of 200000" in answer.json()["error"]


def test_still_healthy_after_bad_binary_requests(server: Server) -> None:
    assert server.request("GET", "/healthz").status == 200
    status, _ = post(server, ROW)
    assert status == 200
