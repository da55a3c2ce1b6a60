"""The network namespace a cluster runs in: create it, enter it, remove it without a trace.

See e2e/harness/addresses.py for why it exists and its addresses. Creating it needs root and
iproute2; processes enter it with util-linux's `nsenter --net`, which (unlike `ip netns exec`)
leaves /sys and the mount namespace alone, so the process kubelet's containers see the host's.
"""

from __future__ import annotations

import pathlib
import subprocess

from e2e.harness import addresses

NETNS_DIR = pathlib.Path("/run/netns")


class TestHostError(RuntimeError):
    """The namespace or its link to the host could not be made."""


def netns_path(block: int) -> pathlib.Path:
    return NETNS_DIR / addresses.netns_name(block)


def enter(block: int) -> list[str]:
    """The argv prefix that runs a program inside the cluster's namespace."""
    return ["nsenter", f"--net={netns_path(block)}", "--"]


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True)


def _must(*args: str) -> None:
    try:
        done = _ip(*args)
    except FileNotFoundError:
        raise TestHostError("`ip` (iproute2) is not installed; run `make sysdeps`") from None
    if done.returncode != 0:
        raise TestHostError(f"`ip {' '.join(args)}` failed: {done.stderr.strip()} "
                            "(the cluster's network namespace needs root)")


def create(block: int) -> None:
    """Make namespace faiss-node-N with lo up, the pod and Service ranges local inside, and a
    veth pair to the host, which routes both ranges to it. The caller holds the block's lock."""
    ns, host_end, node_end = addresses.netns_name(block), addresses.host_veth(block), addresses.node_veth(block)
    _must("netns", "add", ns)
    _must("link", "add", host_end, "type", "veth", "peer", "name", node_end, "netns", ns)
    _must("-n", ns, "link", "set", "lo", "up")
    _must("-n", ns, "addr", "add", f"{addresses.node_address(block)}/31", "dev", node_end)
    _must("-n", ns, "link", "set", node_end, "up")
    for network in (addresses.pod_network(block), addresses.service_network(block)):
        _must("-n", ns, "route", "add", "local", str(network), "dev", "lo")
    _must("addr", "add", f"{addresses.host_address(block)}/31", "dev", host_end)
    _must("link", "set", host_end, "up")
    for network in (addresses.pod_network(block), addresses.service_network(block)):
        _must("route", "replace", str(network), "via", addresses.node_address(block), "dev", host_end)


def remove(block: int) -> None:
    """Delete the namespace, the veth pair and the host's routes; a no-op for what is already gone.
    Only for a block whose lock the caller holds (no process of the cluster is left)."""
    for network in (addresses.pod_network(block), addresses.service_network(block)):
        _ip("route", "del", str(network))
    # Normally gone with the namespace; still there if a process kept the namespace alive.
    _ip("link", "del", addresses.host_veth(block))
    if netns_path(block).exists():
        _must("netns", "del", addresses.netns_name(block))
    left = leftovers(block)
    if left:
        raise TestHostError(f"cannot remove the test host of block {block}: {'; '.join(left)}")


def remove_stale() -> None:
    """Remove the test hosts of crashed runs: those whose block's lock nobody holds."""
    for block in addresses.BLOCKS:
        if not (netns_path(block).exists() or pathlib.Path(f"/sys/class/net/{addresses.host_veth(block)}").exists()):
            continue
        try:
            held = addresses.lock(block)
        except addresses.BlockTaken:
            continue
        with held:
            remove(block)


def leftovers(block: int) -> list[str]:
    """What of the block's test host exists on this machine (empty after a clean remove)."""
    found = []
    if netns_path(block).exists():
        found.append(f"network namespace {netns_path(block)}")
    if _ip("link", "show", addresses.host_veth(block)).returncode == 0:
        found.append(f"link {addresses.host_veth(block)}")
    routes = _ip("route", "show", "table", "all").stdout
    for network in (addresses.pod_network(block), addresses.service_network(block)):
        if any(str(network) in line.split()[:2] for line in routes.splitlines()):
            found.append(f"route to {network}")
    return found
