"""`serve` applies the degenerate-data rule to queries: under cosine (an artifact built with
normalize) a (near-)zero query vector has no direction and is answered 400, naming it; the
same vector is a fine query for an L2 index. Issue 19, item 11."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from faiss_operator.builder import pipeline
from tests.server.conftest import DIMENSION, running_server


def test_a_near_zero_query_under_cosine_is_a_400_naming_it(tmp_path: Path) -> None:
    data = np.random.default_rng(2).standard_normal((500, DIMENSION)).astype(np.float32)
    np.save(tmp_path / "v.npy", data)
    out = tmp_path / "artifact"
    pipeline.build(pipeline.BuildRequest(source=str(tmp_path / "v.npy"), out=out, index_type="Flat",
                                         metric="InnerProduct", normalize=True, eval_queries=20, env={}))
    with running_server(out, tmp_path / "serve.log", "--workers", "1") as server:
        server.wait_for("/readyz", 200)
        assert server.search({"vector": data[3].tolist(), "k": 1}).json()["ids"] == [3]
        answer = server.search({"vector": [1e-9] * DIMENSION, "k": 1})
        assert answer.status == 400
        assert "(near-)zero vector(s) (L2 norm below 1e-06; first at row 0) have no direction" in answer.json()["error"]
