"""Every bad request gets a 4xx with a JSON message; none gets a 5xx or takes the server down."""

from __future__ import annotations

import json
from pathlib import Path
import socket

import pytest

from tests.server.conftest import Server

GOOD = [0.1] * 16

CASES = [
    ("wrong dimension", {"vectors": [[0.1] * 15]}, 400, "dimension 15; this index has dimension 16"),
    ("ragged batch", {"vectors": [GOOD, [0.1] * 17]}, 400, "vectors[1] has dimension 17"),
    ("string value", {"vector": ["x"] + GOOD[1:]}, 400, "vector.0"),
    ("boolean value", {"vector": [True] + GOOD[1:]}, 400, "vector.0"),
    ("null value", {"vector": [None] + GOOD[1:]}, 400, "vector.0"),
    ("beyond float32", {"vector": [1e39] + GOOD[1:]}, 400, "outside the float32 range"),
    ("k zero", {"vector": GOOD, "k": 0}, 400, "k: Input should be greater than or equal to 1"),
    ("k negative", {"vector": GOOD, "k": -3}, 400, "k:"),
    ("k above limit", {"vector": GOOD, "k": 101}, 400, "k=101 is above the limit of 100"),
    ("k not integer", {"vector": GOOD, "k": "10"}, 400, "k:"),
    ("batch too large", {"vectors": [GOOD] * 65}, 413, "65 vectors in one request is more than the limit of 64"),
    ("empty batch", {"vectors": []}, 400, "'vectors' is empty"),
    ("both forms", {"vectors": [GOOD], "vector": GOOD}, 400, "exactly one of"),
    ("neither form", {"k": 3}, 400, "exactly one of"),
    ("unknown field", {"vector": GOOD, "limit": 3}, 400, "limit: unknown field"),
    ("unknown param", {"vector": GOOD, "params": {"nprobe": 4}}, 400, "params.nprobe: not a search-time parameter of index type 'HNSW'"),
    ("param out of range", {"vector": GOOD, "params": {"ef_search": 0}}, 400, "ef_search"),
    ("param not integer", {"vector": GOOD, "params": {"ef_search": "64"}}, 400, "params.ef_search: expected a positive integer"),
    ("not an object", [GOOD], 400, "must be a JSON object"),
]


@pytest.mark.parametrize(("name", "document", "status", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_search_request(server: Server, name: str, document: object, status: int, message: str) -> None:
    answer = server.search(document)
    assert answer.status == status, answer.body
    assert answer.headers["content-type"] == "application/json"
    assert message in answer.json()["error"]


@pytest.mark.parametrize(
    ("body", "message"),
    [(b'{"vector": [0.1,', "malformed JSON"), (b'{"vector": [NaN]}', "malformed JSON"), (b"", "malformed JSON"),
     (b"\xff\xfe", "malformed JSON")],
)
def test_malformed_bodies(server: Server, body: bytes, message: str) -> None:
    answer = server.request("POST", "/v1/search", body)
    assert answer.status == 400 and message in answer.json()["error"]


def test_body_too_large_by_header_and_by_stream(server: Server) -> None:
    big = json.dumps({"vectors": [GOOD] * 64, "pad": "x" * 200_000}).encode()
    answer = server.request("POST", "/v1/search", big)
    assert answer.status == 413 and "larger than the limit of 200000" in answer.json()["error"]
    # Chunked: no Content-Length, so the limit is enforced while reading.
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as connection:
        chunk = b"x" * 100_000
        head = b"POST /v1/search HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        connection.sendall(head + (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 3 + b"0\r\n\r\n")
        reply = b""
        while part := connection.recv(65536):
            reply += part
    assert reply.startswith(b"HTTP/1.1 413") and b"larger than the limit" in reply


@pytest.mark.parametrize(("method", "path", "status"), [("GET", "/nope", 404), ("GET", "/v1/search", 405), ("DELETE", "/v1/info", 405)])
def test_unknown_routes_and_methods(server: Server, method: str, path: str, status: int) -> None:
    answer = server.request(method, path)
    assert answer.status == status and "error" in answer.json()


def test_the_server_is_still_healthy_after_all_that(server: Server) -> None:
    assert server.request("GET", "/readyz").status == 200
    assert server.search({"vector": GOOD, "k": 1}).status == 200
    text = server.request("GET", "/metrics").body.decode()
    assert 'code="500"' not in text


def test_nprobe_above_the_built_nlist_probes_every_list_like_the_default(tmp_path: Path) -> None:
    """The issue's case: 100 x 16 vectors, no nlist: the build chooses nlist 2, the default nprobe
    is 10. Sending 10 explicitly answers exactly what the default answers; /v1/info says nprobe 2."""
    from tests.server.conftest import make_artifact, running_server

    artifact = make_artifact(tmp_path, index_type="IVF", count=100)
    with running_server(artifact, tmp_path / "log", "--warmup-queries", "1") as ivf:
        ivf.wait_for("/readyz", 200)
        info = ivf.request("GET", "/v1/info").json()
        default = ivf.search({"vector": GOOD, "k": 5})
        explicit = ivf.search({"vector": GOOD, "k": 5, "params": {"nprobe": 10}})
        huge = ivf.search({"vector": GOOD, "k": 5, "params": {"nprobe": 500}})
        one = ivf.search({"vector": GOOD, "k": 5, "params": {"nprobe": 1}})
    assert (info["config"]["nlist"], info["config"]["nprobe"]) == (2, 2)
    assert default.status == explicit.status == huge.status == one.status == 200
    assert explicit.json() == default.json() == huge.json()
    assert len(one.json()["ids"]) <= 5

    # A search-parameters-only revision that sets the advertised value becomes ready.
    with running_server(artifact, tmp_path / "log2", "--warmup-queries", "1", "--search-params", '{"nprobe": 10}') as pod:
        pod.wait_for("/readyz", 200)
        assert pod.request("GET", "/v1/info").json()["config"]["nprobe"] == 2
        assert pod.search({"vector": GOOD, "k": 5}).json() == default.json()
