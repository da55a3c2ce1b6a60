"""The server over real HTTP answers exactly what in-process search answers."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from faiss_operator.index import FAISSIndex
from tests.server.conftest import DEADLINE_S, Server


def test_batch_search_matches_in_process_search(server: Server, artifact: Path) -> None:
    index = FAISSIndex.load(artifact)
    queries = np.load(artifact / "queries.npy")[:20]
    expected = index.search(queries, k=5)
    answer = server.search({"vectors": queries.tolist(), "k": 5})
    assert answer.status == 200, answer.body
    results = answer.json()["results"]
    assert [r["ids"] for r in results] == [e.ids for e in expected]
    np.testing.assert_allclose([r["distances"] for r in results], [e.distances for e in expected], rtol=1e-5)
    assert "metadata" not in results[0]
    assert answer.headers["x-faiss-revision"] == "rev-test"


def test_single_vector_form_with_metadata(server: Server, artifact: Path) -> None:
    query = np.load(artifact / "queries.npy")[0]
    answer = server.search({"vector": query.tolist(), "k": 3, "include_metadata": True}).json()
    assert len(answer["ids"]) == 3 and answer["metadata"][0] == {"id": answer["ids"][0], "n": int(answer["ids"][0][4:])}


def test_per_request_ef_search(server: Server, artifact: Path) -> None:
    index = FAISSIndex.load(artifact)
    query = np.load(artifact / "queries.npy")[1]
    expected = index.search(query, k=10, params={"ef_search": 16})[0]
    answer = server.search({"vector": query.tolist(), "k": 10, "params": {"ef_search": 16}})
    assert answer.status == 200 and answer.json()["ids"] == expected.ids


def test_k_above_the_vector_count_returns_what_exists(tmp_path: Path) -> None:
    from tests.server.conftest import make_artifact, running_server

    artifact = make_artifact(tmp_path, index_type="Flat", count=30)
    with running_server(artifact, tmp_path / "log", "--warmup-queries", "1") as server:
        server.wait_for("/readyz", 200)
        answer = server.search({"vector": [0.0] * 16, "k": 50}).json()
        assert len(answer["ids"]) == 30 and len(answer["distances"]) == 30


def test_concurrent_requests_each_get_their_own_answer(server: Server, artifact: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    index = FAISSIndex.load(artifact)
    queries = np.load(artifact / "queries.npy")[:40]
    expected = [r.ids for r in index.search(queries, k=4)]
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda q: server.search({"vector": q.tolist(), "k": 4}).json()["ids"], queries))
    assert answers == expected


def test_info_and_metrics(server: Server, artifact: Path) -> None:
    info = server.request("GET", "/v1/info").json()
    assert info["revision"] == "rev-test" and info["index_type"] == "HNSW" and info["dimension"] == 16
    assert info["vectors"] == 2000 and info["metric"] == "L2" and info["config"]["m"] == 32
    assert server.search({"vector": [0.0] * 16, "k": 3}).status == 200
    assert server.search({"vector": [0.0] * 16, "k": 0}).status == 400
    needles = (
        'faiss_requests_total{code="200",endpoint="search",source="client"}',
        'faiss_requests_total{code="400",endpoint="search",source="client"}',
        "faiss_request_duration_seconds_bucket",
        "faiss_requests_in_flight 0.0",
        "faiss_index_vectors 2000.0",
        "faiss_index_memory_bytes",
        'faiss_index_build_recall{k="10"}',
        'faiss_index_info{index_type="HNSW",metric="L2",revision="rev-test"} 1.0',
        "faiss_ready 1.0",
    )
    # Counts are added once per loop turn, just after that turn's answers, and the scrape may
    # reach the pod's other process first: wait for them.
    deadline = time.monotonic() + DEADLINE_S
    while True:
        text = server.request("GET", "/metrics").body.decode()
        missing = [needle for needle in needles if needle not in text]
        if not missing:
            break
        assert time.monotonic() < deadline, f"missing from /metrics: {missing}"
        time.sleep(0.02)
