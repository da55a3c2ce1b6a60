"""The cluster's addresses live in its own network namespace, never on the host.

The workplace allows test traffic only to loopback and to test hosts in namespaces the run made;
the host reaches pods only through the veth pair to the cluster's namespace.
"""

from __future__ import annotations

import ipaddress
import subprocess

import pytest
from kubernetes import client

from e2e.harness import addresses, testhost
from e2e.harness import cluster as cluster_mod
from e2e.harness.waiting import wait_for

pytestmark = pytest.mark.integration

LINKS = ipaddress.IPv4Network("198.18.0.0/24")
BENCHMARK_RANGE = ipaddress.IPv4Network("198.18.0.0/15")
POD_AND_SERVICE_SPACE = list(BENCHMARK_RANGE.address_exclude(LINKS))


def ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True).stdout


def host_local_routes_in_benchmark_range() -> list[tuple[ipaddress.IPv4Network, str]]:
    """(destination, device) of every entry of the host's local table inside 198.18.0.0/15."""
    found = []
    for line in ip("-4", "route", "show", "table", "local").splitlines():
        words = line.split()
        destination = ipaddress.IPv4Network(words[1], strict=False)
        if destination.overlaps(BENCHMARK_RANGE):
            found.append((destination, words[words.index("dev") + 1]))
    return found


def test_pod_addresses_are_local_only_inside_the_cluster_namespace(
        cluster: cluster_mod.Cluster, api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(namespace, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "idle"},
        "spec": {"terminationGracePeriodSeconds": 1, "runtimeClassName": "process",  # its pid is read below
                 "containers": [{"name": "c", "image": "python",
                                 "command": ["python", "-c", "import time; time.sleep(600)"]}]},
    })
    pod = wait_for(lambda: (p := core.read_namespaced_pod("idle", namespace)).status.phase == "Running" and p,
                   60, "pod idle Running")
    pod_ip = pod.status.pod_ip
    block = cluster.address_block
    assert block is not None and ipaddress.IPv4Address(pod_ip) in addresses.pod_network(block)

    # No pod or Service address is local on the host; the host's only local addresses in the
    # benchmarking range are its ends of the veth pairs to cluster namespaces.
    local = host_local_routes_in_benchmark_range()
    assert not [(d, dev) for d, dev in local if any(d.overlaps(space) for space in POD_AND_SERVICE_SPACE)]
    assert all(d.subnet_of(LINKS) and d.prefixlen == 32 and dev.startswith("fon") and dev.endswith("-h")
               for d, dev in local), local
    assert (ipaddress.IPv4Network(f"{addresses.host_address(block)}/32"), addresses.host_veth(block)) in local
    assert pod_ip not in ip("-4", "-o", "addr", "show")

    # The host sends pod and Service traffic to the namespace; inside it, both ranges are local.
    for target in (pod_ip, str(next(addresses.service_network(block).hosts()))):
        assert ip("route", "get", target).split()[1:5] == [
            "via", addresses.node_address(block), "dev", addresses.host_veth(block)]
        assert ip("-n", addresses.netns_name(block), "route", "get", target).startswith(f"local {target} dev lo")

    # The pod's process runs in the cluster's namespace, not the host's.
    pid = int(pod.status.container_statuses[0].container_id.removeprefix("process://"))
    pod_netns = ip("netns", "identify", str(pid)).strip()
    assert pod_netns == addresses.netns_name(block) and testhost.netns_path(block).exists()
    core.delete_namespaced_pod("idle", namespace)
