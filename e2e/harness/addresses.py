"""Addresses for pods and Services of one local cluster, local to this machine without a network.

The API server refuses loopback addresses (127.0.0.0/8) in EndpointSlices, so pods cannot live
there if Services are to find them. Instead each cluster takes a block N and makes two /24s of
the RFC 2544 benchmarking range local with a `local` route on lo (any address in a local route
can be bound, like 127.0.0.0/8): pods get 198.18.N.0/24, Services get ClusterIPs from
198.19.N.0/24. The block is held by the kubelet with a file lock, so two clusters on one machine
(a developer's and the tests') never share addresses.
"""

from __future__ import annotations

import fcntl
import ipaddress
import pathlib
import subprocess
from typing import IO

LOCK_DIR = pathlib.Path("/tmp/faiss-operator-process-kubelet")
BLOCKS = range(1, 255)


class BlockTaken(RuntimeError):
    """Another running cluster holds the block."""


def pod_network(block: int) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(f"198.18.{block}.0/24")


def service_network(block: int) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(f"198.19.{block}.0/24")


def _lock_file(block: int) -> pathlib.Path:
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    return LOCK_DIR / f"block-{block}.lock"


def lock(block: int) -> IO[str]:
    """Hold the block for the life of the returned file (of this process)."""
    handle = open(_lock_file(block), "w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise BlockTaken(f"address block {block} is held by another running cluster") from None
    return handle


def free_block() -> int:
    """A block no running cluster holds (its kubelet takes the lock when it starts)."""
    for block in BLOCKS:
        try:
            lock(block).close()
        except BlockTaken:
            continue
        return block
    raise BlockTaken(f"all address blocks are taken (locks in {LOCK_DIR})")


def _route(action: str, network: ipaddress.IPv4Network) -> None:
    subprocess.run(["ip", "route", action, "local", str(network), "dev", "lo"],
                   check=True, capture_output=True, text=True)


def add_routes(block: int) -> None:
    for network in (pod_network(block), service_network(block)):
        try:
            _route("replace", network)
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"cannot make {network} local (`ip route replace local {network} dev lo`): "
                               f"{exc.stderr.strip()}") from exc


def remove_routes(block: int) -> None:
    for network in (pod_network(block), service_network(block)):
        try:
            _route("del", network)
        except subprocess.CalledProcessError:
            pass  # already gone
