"""The cluster starts and stops cleanly, more than once in one process, leaving nothing behind:
no process, no mount, no network namespace, veth or route; a crashed run's namespace is cleaned up."""

from __future__ import annotations

import os
import pathlib

import pytest
from kubernetes import client

from e2e.harness import addresses, processes, testhost
from e2e.harness import cluster as cluster_mod
from e2e.harness.waiting import wait_for

pytestmark = pytest.mark.integration


def processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{entry.name}: {cmdline[:200]}")
    return found


def mounts_under(path: pathlib.Path) -> list[str]:
    text = pathlib.Path("/proc/self/mountinfo").read_text()
    return [line for line in text.splitlines() if str(path) in line.split()[4]]


@pytest.mark.usefixtures("control_plane_programs")
def test_up_and_down_twice_leaves_no_process_or_mount(tmp_path: pathlib.Path) -> None:
    state = tmp_path / "cluster"
    for round_ in (1, 2):
        c = cluster_mod.Cluster(state)
        try:
            c.up(timeout=180)
            core = client.CoreV1Api(c.api_client())
            core.create_namespaced_pod("default", {
                "apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"sleeper-{round_}"},
                "spec": {"runtimeClassName": "process",  # the pid below is a host process's
                         "containers": [{"name": "s", "image": "python",
                                         "command": ["python", "-c", "import time; time.sleep(600)"],
                                         "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]}],
                         "volumes": [{"name": "scratch", "emptyDir": {}}]},
            })
            pod = wait_for(lambda: (p := core.read_namespaced_pod(f"sleeper-{round_}", "default")).status.phase
                           == "Running" and p, 60, "sleeper Running")
            pid = int(pod.status.container_statuses[0].container_id.removeprefix("process://"))
            started = processes.start_time_of(pid)
            records = c.records()
            block = c.address_block
            assert block is not None and testhost.netns_path(block).exists()
            assert {r.name for r in records} == set(cluster_mod.COMPONENTS)
        finally:
            c.down()
        assert not [r for r in records if processes.alive(r)]
        assert started is not None and processes.start_time_of(pid) != started, "pod process survived down"
        assert processes_mentioning(str(state)) == []
        assert mounts_under(state) == []
        assert mounts_under(testhost.netns_path(block)) == []
        assert testhost.leftovers(block) == []
        assert not (state / "kubeconfig").exists()


def test_a_crashed_runs_namespace_is_removed_when_nobody_holds_its_block() -> None:
    block, held = addresses.claim_block()
    with held:
        testhost.create(block)
        assert len(testhost.leftovers(block)) == 4  # namespace, veth, two routes
        testhost.remove_stale()
        assert len(testhost.leftovers(block)) == 4, "removed while its block was held"
    testhost.remove_stale()
    assert testhost.leftovers(block) == []
    assert mounts_under(testhost.netns_path(block)) == []
