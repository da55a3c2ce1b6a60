"""`serve --workers N`: N processes on one port, ready only together, drained together by SIGTERM."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from e2e.harness.waiting import wait_for
from faiss_operator.index import FAISSIndex
from faiss_operator.server import processes
from tests.server.conftest import DEADLINE_S, make_artifact, running_server


def children(pid: int) -> set[int]:
    return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def test_workers_share_the_port_and_answer_alike(tmp_path: Path) -> None:
    artifact = make_artifact(tmp_path)
    with running_server(artifact, tmp_path / "log", "--workers", "2", "--search-threads", "1") as server:
        server.wait_for("/readyz", 200)
        assert len(children(server.process.pid)) == 2
        index = FAISSIndex.load(artifact)
        queries = np.load(artifact / "queries.npy")[:30]
        expected = [e.ids for e in index.search(queries, k=5)]
        # urllib opens a new connection per request, so the kernel spreads them over both processes.
        got = [server.search({"vector": q.tolist(), "k": 5}).json()["ids"] for q in queries]
        assert got == expected
        for pid in children(server.process.pid):
            os.kill(pid, 0)  # both still alive


def test_pod_is_unready_until_every_worker_is(tmp_path: Path) -> None:
    artifact = make_artifact(tmp_path, index_type="Flat", count=20_000)
    with running_server(artifact, tmp_path / "log", "--workers", "2", "--search-threads", "1",
                        "--warmup-queries", "15000") as server:
        answers = []
        deadline = time.monotonic() + DEADLINE_S
        while (answer := server.request("GET", "/readyz")).status != 200:
            answers.append(answer.json())
            assert time.monotonic() < deadline, answers[-1:]
            time.sleep(0.01)
        assert answers, "the pod was ready before any probe saw it loading"
        assert all(a["ready"] is False for a in answers)
        # Once any process says ready, every process is: no probe or search lands on one still warming up.
        for _ in range(20):
            assert server.request("GET", "/readyz").status == 200
            assert server.search({"vector": [0.0] * 16}).status == 200


def test_sigterm_stops_every_worker_and_exits_0(tmp_path: Path) -> None:
    artifact = make_artifact(tmp_path)
    log = tmp_path / "log"
    with running_server(artifact, log, "--workers", "2", "--search-threads", "1") as server:
        server.wait_for("/readyz", 200)
        workers = children(server.process.pid)
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=DEADLINE_S) == 0
        for pid in workers:
            assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_a_worker_dying_takes_the_pod_down(tmp_path: Path) -> None:
    artifact = make_artifact(tmp_path)
    with running_server(artifact, tmp_path / "log", "--workers", "2", "--search-threads", "1") as server:
        server.wait_for("/readyz", 200)
        os.kill(min(children(server.process.pid)), signal.SIGKILL)
        assert server.process.wait(timeout=DEADLINE_S) == 1


def test_port_in_use_fails_the_pod_with_the_reason(tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys

    with socket.socket() as taken:  # a plain listener without SO_REUSEPORT: the workers cannot join it
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "faiss_operator.cli", "serve", "--artifact", str(tmp_path), "--host", "127.0.0.1",
             "--port", str(port), "--workers", "2"],
            capture_output=True, text=True, timeout=DEADLINE_S,
        )
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].endswith(f"Refused to serve: port {port} on 127.0.0.1 is in use by another program")


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text) for sample in family.samples
    }


def test_workers_verify_once_map_the_index_and_report_metrics_summed_over_processes(tmp_path: Path) -> None:
    artifact = make_artifact(tmp_path)
    log = tmp_path / "log"
    with running_server(artifact, log, "--workers", "2") as server:
        server.wait_for("/readyz", 200)
        workers = children(server.process.pid)
        assert len(workers) == 2
        for pid in workers:  # each process maps the one index file instead of holding a copy
            assert str(artifact / "index.faiss") in Path(f"/proc/{pid}/maps").read_text()
        queries = np.load(artifact / "queries.npy")[:40]
        for q in queries:  # a new connection each: the kernel spreads them over both processes
            assert server.search({"vector": q.tolist(), "k": 5}).status == 200
        assert server.search({"vector": [0.0] * 3}).status == 400
        client = (("code", "200"), ("endpoint", "search"), ("source", "client"))
        refused = ("faiss_requests_total", (("code", "400"), ("endpoint", "search"), ("source", "client")))
        # Counters are written once per event-loop turn, just after the answers of that turn: the
        # last request's count may land a moment after its answer.
        wait_for(lambda: refused in _samples(server.request("GET", "/metrics").body.decode()), DEADLINE_S,
                 "the refused request counted")
        for _ in range(6):  # whichever process answers /metrics counts both processes' requests
            samples = _samples(server.request("GET", "/metrics").body.decode())
            assert samples[("faiss_requests_total", client)] == 40
            assert samples[refused] == 1
            assert samples[("faiss_queries_total", ())] == 40
            assert samples[("faiss_request_duration_seconds_count", (("endpoint", "search"), ("source", "client")))] == 41
            assert samples[("faiss_ready", ())] == 1
            assert samples[("faiss_index_vectors", ())] == 2000
            assert samples[("faiss_requests_in_flight", ())] == 0
    assert log.read_text().count("Verified artifact checksums for every serving process") == 1


def _loaded_after_the_fork(pid: int) -> set[str]:
    """The shared objects (compiled modules, their libraries) whose relocated read-only pages are
    this process's own. The dynamic loader writes those pages once, when it loads the file, and
    makes them read-only (RELRO): loaded before the fork, they stay shared with every sibling
    (Shared_Dirty); loaded by this process, they are private (Private_Dirty)."""
    private: set[str] = set()
    current: str | None = None
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split(None, 5)
        if "-" in fields[0] and len(fields) > 1 and len(fields[1]) == 4:  # a mapping's first line
            current = fields[5] if len(fields) == 6 and ".so" in Path(fields[5]).name and fields[1] == "r--p" else None
        elif current is not None and fields[0] == "Private_Dirty:" and int(fields[1]) > 0:
            private.add(current)
    return private


def test_serving_processes_share_the_modules_imported_before_forking_and_a_small_supervisor(tmp_path: Path) -> None:
    # Every compiled module a serving process uses is loaded before the fork (processes.share_before_fork),
    # so the processes share it (docs/serving.md, "Memory"). One loaded after the fork, into each
    # process separately, is named here: add it to processes.SERVING_MODULES. The main process then
    # becomes the supervisor (server/supervisor.py), which holds none of these modules.
    artifact = make_artifact(tmp_path)
    log = tmp_path / "log"
    with running_server(artifact, log, "--workers", "2") as server:
        server.wait_for("/readyz", 200)
        for q in np.load(artifact / "queries.npy")[:20]:  # new connections: both processes answer some
            assert server.search({"vector": q.tolist(), "k": 5}).status == 200
        assert server.request("GET", "/metrics").status == 200
        workers = children(server.process.pid)
        assert len(workers) == 2
        for pid in workers:
            assert _loaded_after_the_fork(pid) == set()
            mapped = Path(f"/proc/{pid}/maps").read_text()
            assert "uvloop" in mapped and "httptools" in mapped and "faiss" in mapped
        supervisor_maps = Path(f"/proc/{server.process.pid}/maps").read_text()
        assert "faiss" not in supervisor_maps and "numpy" not in supervisor_maps and "uvloop" not in supervisor_maps
        assert "from faiss_operator.server import supervisor" in Path(f"/proc/{server.process.pid}/cmdline").read_text()
    frozen = [line for line in log.read_text().splitlines() if "Shared with the serving processes" in line]
    assert len(frozen) == 1, frozen  # the main process, once
    assert int(frozen[0].rsplit("frozen_objects=", 1)[1]) > 0


def test_share_before_fork_skips_a_module_that_is_not_installed() -> None:
    import gc
    import sys

    try:
        frozen = processes.share_before_fork(["json.decoder", "no_such_module_for_faiss_operator"])
        assert frozen > 0 and gc.get_freeze_count() > 0
        assert "json.decoder" in sys.modules
        assert "no_such_module_for_faiss_operator" not in sys.modules
    finally:
        gc.unfreeze()  # this test process goes on collecting as before


def test_a_corrupt_artifact_keeps_every_worker_unready_with_the_verdict(tmp_path: Path) -> None:
    artifact = make_artifact(tmp_path)
    index_file = artifact / "index.faiss"
    data = bytearray(index_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    index_file.write_bytes(bytes(data))
    with running_server(artifact, tmp_path / "log", "--workers", "2") as server:
        server.wait_for_phase("Failed")
        for _ in range(6):
            answer = server.request("GET", "/readyz")
            assert answer.status == 503
            assert answer.json()["phase"] == "Failed"
            assert "file index.faiss is corrupt (sha256 does not match the manifest)" in answer.json()["reason"]


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [("50000 100000\n", 1), ("150000 100000\n", 2), ("100000 100000\n", 1), ("max 100000\n", None), (None, None),
     ("garbage\n", None)],
)
def test_workers_default_to_the_cgroup_cpu_quota_else_the_affinity(
    tmp_path: Path, cpu_max: str | None, expected: int | None,
) -> None:
    path = tmp_path / "cpu.max"
    if cpu_max is not None:
        path.write_text(cpu_max)
    affinity = len(os.sched_getaffinity(0))
    assert processes.available_cpus(path) == (min(expected, affinity) if expected else affinity)



def test_sigterm_to_the_whole_process_group_keeps_every_worker_serving_through_the_drain_delay(tmp_path: Path) -> None:
    # A kubelet may signal the container's process group (the process kubelet does, and so does
    # a terminal's Ctrl-C): each worker then gets SIGTERM twice, from the group and forwarded by
    # the main process. That is one request to drain, not a second signal that stops at once: a
    # worker that stopped would close its listener while the pod is still a Service endpoint,
    # resetting the connections in its queue. The two deliveries are made one after the other
    # here; at once, the kernel often merges them into one and the failure would be a race.
    artifact = make_artifact(tmp_path)
    log = tmp_path / "log"
    with running_server(artifact, log, "--workers", "2", "--search-threads", "0", "--drain-delay", "30",
                        new_session=True) as server:
        server.wait_for("/readyz", 200)
        workers = children(server.process.pid)
        for pid in workers:  # the group's signal, as each worker receives it
            os.kill(pid, signal.SIGTERM)
        wait_for(lambda: log.read_text().count("Received signal, draining") == 2, DEADLINE_S, "both workers draining")
        server.process.send_signal(signal.SIGTERM)  # the main process's own, which it forwards
        # Forwarded (or, if taken as a second signal, the workers have stopped).
        wait_for(lambda: any(line in log.read_text() for line in ("Forwarded signal to the serving processes", "Stopped")),
                 DEADLINE_S, "the main process to forward SIGTERM")
        # New connections, spread by the kernel over both processes, are all answered.
        answers = [server.search({"vector": [0.0] * 16, "k": 3}).status for _ in range(40)]
        assert answers == [200] * 40
        assert children(server.process.pid) == workers
        for _ in range(3):  # whichever process the kernel picks says Draining
            assert server.request("GET", "/readyz").json()["phase"] == "Draining"
        server.process.send_signal(signal.SIGTERM)  # a second signal stops without waiting out the delay
        assert server.process.wait(timeout=DEADLINE_S) == 0
    assert log.read_text().count("Stopped") == 2


def test_the_supervisor_drops_a_finished_process_live_gauges_as_prometheus_client_does(tmp_path: Path) -> None:
    from prometheus_client import multiprocess as prometheus_multiprocess

    from faiss_operator.server import supervisor

    # The supervisor does not import prometheus-client (~10 MiB); it must remove what the library would.
    assert set(supervisor.LIVE_GAUGE_MODES) == set(prometheus_multiprocess._LIVE_GAUGE_MULTIPROCESS_MODES)
    names = [f"gauge_{mode}_{pid}.db" for mode in supervisor.LIVE_GAUGE_MODES for pid in (41, 42)]
    names += ["counter_41.db", "gauge_all_41.db", "histogram_41.db"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    supervisor.mark_process_dead(41, tmp_path)
    supervisor.mark_process_dead(43, tmp_path)  # none of its files: nothing to do
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([f"gauge_{mode}_42.db" for mode in supervisor.LIVE_GAUGE_MODES]
                          + ["counter_41.db", "gauge_all_41.db", "histogram_41.db"])


def test_supervise_waits_in_process_with_the_same_exit_codes_when_the_supervisor_cannot_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    # Forked from this test process: the children only exit; exec of a missing interpreter fails.
    monkeypatch.setattr(processes.sys, "executable", str(tmp_path / "no-python"))
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "gauge_livesum_1.db").write_bytes(b"")
    try:
        # Unsignalled, a serving process that exits takes the pod down: its own code, else 1.
        assert processes.supervise(2, lambda number: 3, metrics_dir) == 3
        assert processes.supervise(2, lambda number: 0, metrics_dir) == 1
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    assert "Could not start the supervisor, supervising from this process" in caplog.text
    assert signal.pthread_sigmask(signal.SIG_BLOCK, set()) & {signal.SIGTERM, signal.SIGINT} == set()
    assert (metrics_dir / "gauge_livesum_1.db").exists()  # the caller's metrics_directory removes it
