"""The demo's pure parts: the example files adapted to the local cluster, the loader Job, the table.

They run without the model or a cluster (the demo itself is not part of `make test`).
"""

from __future__ import annotations

from typing import Any

import yaml

from e2e.demo import loader, migration, report

EXAMPLES = migration.EXAMPLES


def test_each_migration_example_is_adapted_in_exactly_the_documented_fields() -> None:
    settings = migration.Settings()
    for index_type, file in migration.FILES.items():
        original: dict[str, Any] = yaml.safe_load((EXAMPLES / file).read_text())
        adapted = migration.example(index_type, settings)
        assert adapted["spec"]["indexType"] == index_type == original["spec"]["indexType"]
        assert adapted["spec"]["config"] == original["spec"]["config"]
        assert adapted["spec"]["evaluation"] == {**original["spec"]["evaluation"], "minRecall": 0.8,
                                                 "maxP99LatencyMs": 25.0}
        assert adapted["spec"]["serving"] == {"replicas": 4}
        assert adapted["spec"]["source"] == {"uri": "pvc://embeddings/alerts/v1.npy"}
        rollout = original["spec"]["rollout"]
        want_steps = [{**step, "pauseSeconds": 10} if "pauseSeconds" in step else step for step in rollout["steps"]]
        assert adapted["spec"]["rollout"] == {
            **rollout, "steps": want_steps, "scaleDownDelaySeconds": 10,
            "analysis": {**rollout.get("analysis", {}), "maxLatencyRatio": 5.0, "maxP99LatencyMs": 250.0}}
        assert adapted["metadata"] == {**original["metadata"], "namespace": "search"}


def test_a_step_that_waits_for_an_admin_keeps_waiting() -> None:
    steps = migration.example("OPQ+HNSW", migration.Settings())["spec"]["rollout"]["steps"]
    assert steps == [{"weight": 25}, {"weight": 50, "pauseSeconds": 10}]


def test_the_loader_job_gets_the_url_and_dimension_and_writes_where_the_examples_read() -> None:
    job = loader.job("search", "http://198.18.0.2:8000/v.npy", 384)
    env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env == {"EMBEDDINGS_URL": "http://198.18.0.2:8000/v.npy",
                   "TARGET": "/mnt/pvc/embeddings/alerts/v1.npy", "DIMENSION": "384"}
    assert loader.target_uri() == migration.Settings().source_uri
    assert loader.claim("search")["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_the_comparison_table_reads_each_revisions_build_metrics() -> None:
    status = {"revisions": [
        {"name": "b", "metrics": {"p99LatencyMs": 1.25, "memoryBytes": 36175872, "buildSeconds": 10.8,
                                  "recall": 1, "vectors": 20000}},
        {"name": "a", "metrics": {"p99LatencyMs": 2.3199, "memoryBytes": 31037849, "buildSeconds": 0.28,
                                  "recall": 0.8942, "vectors": 20000}},
        {"name": "c"},
    ]}
    table = report.comparison(status, {"IVF": "a", "HNSW": "b", "OPQ+HNSW": "c"}).splitlines()
    assert [line.split(" | ") for line in table[2:]] == [
        ["IVF       ", "a       ", "2.320 ms   ", "29.6 MiB", "0.3 s     ", "0.894    ", "20000  "],
        ["HNSW      ", "b       ", "1.250 ms   ", "34.5 MiB", "10.8 s    ", "1.000    ", "20000  "],
        ["OPQ+HNSW  ", "c       ", "-          ", "-       ", "-         ", "-        ", "-      "],
    ]
