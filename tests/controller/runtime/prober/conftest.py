"""Real `faiss-operator serve` processes on loopback ports, the pods the prober measures.

One HNSW artifact (built by the real builder) served three ways: two pods of the candidate
revision as built, and one pod of a "stable" revision serving the same artifact with efSearch 1,
so its recall is measurably lower. Package-scoped: starting a server takes a second or two.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from faiss_operator.builder import pipeline
from tests.server.conftest import Server, running_server

DIMENSION = 16
COUNT = 3000
EVAL_QUERIES = 300
K = 10
CANDIDATE = "cand01"
STABLE = "stab01"


def build_artifact(directory: Path, *, revision: str = CANDIDATE, index_type: str = "HNSW") -> Path:
    rng = np.random.default_rng(23)
    np.save(directory / "v.npy", rng.standard_normal((COUNT, DIMENSION)).astype(np.float32))
    (directory / "ids.txt").write_text("".join(f"doc-{i}\n" for i in range(COUNT)))
    out = directory / "artifact"
    pipeline.build(pipeline.BuildRequest(
        source=str(directory / "v.npy"), ids=str(directory / "ids.txt"), out=out, index_type=index_type,
        config={"m": 16, "ef_construction": 80, "ef_search": 64} if index_type == "HNSW" else None,
        eval_queries=EVAL_QUERIES, k=K, revision=revision, env={},
    ))
    return out


@pytest.fixture(scope="package")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_artifact(tmp_path_factory.mktemp("artifact"))


@pytest.fixture(scope="package")
def build_report(artifact: Path) -> dict[str, object]:
    report: dict[str, object] = json.loads((artifact / "report.json").read_text())
    return report


@pytest.fixture(scope="package")
def pods(artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    """"candidate-a", "candidate-b" (revision cand01 as built), "stable" (revision stab01, efSearch 1)."""
    logs = tmp_path_factory.mktemp("logs")
    with contextlib.ExitStack() as stack:
        servers = {
            "candidate-a": stack.enter_context(running_server(artifact, logs / "a.log", "--revision", CANDIDATE)),
            "candidate-b": stack.enter_context(running_server(artifact, logs / "b.log", "--revision", CANDIDATE)),
            "stable": stack.enter_context(running_server(
                artifact, logs / "s.log", "--revision", STABLE, "--search-params", '{"ef_search": 1}')),
        }
        for server in servers.values():
            server.wait_for("/readyz", 200)
        yield servers
