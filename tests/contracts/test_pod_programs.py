"""The controller's command lines and report parser agree with the real pod programs.

The controller spells the flags of `faiss-operator build` and `serve` in contract/pod_args.py
and reads the build's termination message with contract/build_report.py; the programs live in
builder/ and server/. These tests run the real programs with exactly the controller's argv, so a
renamed flag or report field fails here instead of in a cluster.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from faiss_operator import cli
from faiss_operator.contract import build_report, pod_args
from faiss_operator.controller.decision import programs
from tests.server.conftest import make_artifact, running_server

DIMENSION = 16
COUNT = 1500


def _with_local_termination_log(argv: list[str], path: Path) -> list[str]:
    position = argv.index("--termination-log")
    return [*argv[: position + 1], str(path), *argv[position + 2 :]]


def test_build_runs_with_the_controllers_argv_and_its_report_parses(tmp_path: Path) -> None:
    vectors = np.random.default_rng(3).standard_normal((COUNT, DIMENSION)).astype(np.float32)
    np.save(tmp_path / "v.npy", vectors)
    (tmp_path / "ids.txt").write_text("".join(f"doc-{i}\n" for i in range(COUNT)))
    argv = pod_args.BuildArgs(
        source=str(tmp_path / "v.npy"), out=str(tmp_path / "artifact"), index_type="HNSW",
        config={"m": 8, "ef_construction": 40, "ef_search": 32}, dimension=DIMENSION, metric="InnerProduct",
        normalize=True, k=5, queries=40, ids=str(tmp_path / "ids.txt"),
    ).argv()
    assert argv[:2] == [pod_args.PROGRAM, "build"]
    termination_log = tmp_path / "termination-log"

    exit_code = cli.main(_with_local_termination_log(argv, termination_log)[1:])

    assert exit_code == 0
    parsed = build_report.parse_report(termination_log.read_text())
    assert parsed.vectors == COUNT
    assert parsed.k == 5
    assert 0.5 <= parsed.recall <= 1.0
    assert parsed.p99_ms > 0
    manifest = json.loads((tmp_path / "artifact" / "manifest.json").read_text())
    assert manifest["metric"] == "InnerProduct" and manifest["normalize"] is True


def test_a_retried_build_replaces_the_artifact_a_killed_attempt_left(tmp_path: Path) -> None:
    np.save(tmp_path / "v.npy", np.random.default_rng(4).standard_normal((COUNT, DIMENSION)).astype(np.float32))
    argv = pod_args.BuildArgs(
        source=str(tmp_path / "v.npy"), out=str(tmp_path / "artifact"), index_type="Flat", config={},
        dimension=DIMENSION, metric="L2", normalize=False, k=5, queries=40, revision="a1b2c3",
    ).argv()
    argv = _with_local_termination_log(argv, tmp_path / "termination-log")

    assert cli.main(argv[1:]) == 0
    assert cli.main(argv[1:]) == 0

    manifest = json.loads((tmp_path / "artifact" / "manifest.json").read_text())
    assert manifest["revision"] == "a1b2c3"
    assert build_report.parse_report((tmp_path / "termination-log").read_text()).vectors == COUNT


def test_a_build_that_fails_still_leaves_a_report_the_controller_can_read(tmp_path: Path) -> None:
    np.save(tmp_path / "v.npy", np.ones((COUNT, DIMENSION + 1), dtype=np.float32))
    argv = pod_args.BuildArgs(
        source=str(tmp_path / "v.npy"), out=str(tmp_path / "artifact"), index_type="HNSW", config={},
        dimension=DIMENSION, metric="L2", normalize=False, k=5, queries=40,
    ).argv()
    termination_log = tmp_path / "termination-log"

    exit_code = cli.main(_with_local_termination_log(argv, termination_log)[1:])

    assert exit_code != 0
    assert not (tmp_path / "artifact").exists()
    message = termination_log.read_text()
    assert "dimension" in message
    try:
        build_report.parse_report(message)
    except build_report.ReportError as error:
        assert "incomplete" in str(error)
    else:
        raise AssertionError("a failed build's report must not pass as a successful one")


def test_serve_takes_the_controllers_revision_and_search_parameters(tmp_path: Path) -> None:
    artifact = make_artifact(tmp_path, config={"m": 8, "ef_construction": 40, "ef_search": 16})
    argv = pod_args.ServeArgs(artifact=str(artifact), port=0, search_params={"ef_search": 96}, revision="b7e1c0").argv()
    flags = argv[argv.index("--revision"):]

    with running_server(artifact, tmp_path / "server.log", *flags) as server:
        info = server.wait_for("/readyz", 200) and server.request("GET", "/v1/info").json()

    assert info["revision"] == "b7e1c0"
    assert info["config"]["ef_search"] == 96


def test_serve_stays_unready_when_the_search_parameters_do_not_fit_the_index(tmp_path: Path) -> None:
    artifact = make_artifact(tmp_path)
    argv = pod_args.ServeArgs(artifact=str(artifact), port=0, search_params={"nprobe": 4}, revision="b7e1c0").argv()
    flags = argv[argv.index("--revision"):]

    with running_server(artifact, tmp_path / "server.log", *flags) as server:
        answer = server.wait_for_phase("Failed")

    assert answer.status == 503
    assert "--search-params.nprobe: not a search-time parameter of index type 'HNSW'" in answer.json()["reason"]


def test_a_search_parameter_revision_with_nprobe_above_the_automatic_nlist_becomes_ready(tmp_path: Path) -> None:
    """nprobe above the nlist the build chose probes every list: the pod is ready and says so."""
    artifact = make_artifact(tmp_path, index_type="IVF")
    nlist = json.loads((artifact / "manifest.json").read_text())["nlist"]
    argv = pod_args.ServeArgs(artifact=str(artifact), port=0, search_params={"nprobe": nlist + 1}, revision="c0ffee").argv()
    flags = argv[argv.index("--revision"):]

    with running_server(artifact, tmp_path / "server.log", *flags) as server:
        server.wait_for("/readyz", 200)
        info = server.request("GET", "/v1/info").json()

    assert info["revision"] == "c0ffee"
    assert (info["config"]["nlist"], info["config"]["nprobe"]) == (nlist, nlist)


def test_serve_runs_one_process_per_cpu_of_the_serving_containers_limit(tmp_path: Path) -> None:
    artifact = make_artifact(tmp_path)
    workers = programs.serving_workers({"limits": {"cpu": "1500m", "memory": "1Gi"}, "requests": {"cpu": "500m"}})
    argv = pod_args.ServeArgs(artifact=str(artifact), port=0, search_params={}, revision="b7e1c0", workers=workers).argv()
    flags = argv[argv.index("--revision"):]
    assert flags[flags.index("--workers") + 1] == "2"

    with running_server(artifact, tmp_path / "server.log", *flags) as server:
        server.wait_for("/readyz", 200)
        pid = server.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()

    assert len(children) == 2


def test_the_serving_worker_count_comes_from_the_cpu_limit_else_the_request() -> None:
    cases = {
        "limit 2": ({"limits": {"cpu": 2}}, 2),
        "limit 500m": ({"limits": {"cpu": "500m"}}, 1),
        "limit 1.5": ({"limits": {"cpu": "1.5"}, "requests": {"cpu": "4"}}, 2),
        "request only": ({"requests": {"cpu": "3"}}, 3),
        "memory only": ({"limits": {"memory": "1Gi"}}, None),
        "nothing": ({}, None),
        "unreadable": ({"limits": {"cpu": "lots"}}, None),
    }
    got = {name: programs.serving_workers(resources) for name, (resources, _) in cases.items()}
    assert got == {name: expected for name, (_, expected) in cases.items()}
    assert "--workers" not in pod_args.ServeArgs(artifact="/a", port=8080, search_params={}, revision="r").argv()
