"""Addresses of one local cluster, which lives in its own network namespace (its "test host").

This workplace allows test traffic only to loopback and to test hosts inside network namespaces
that the run made itself; pods cannot use loopback because the API server refuses 127.0.0.0/8 in
EndpointSlices. So each cluster takes a block N (1..127) and gets a network namespace
`faiss-node-N` (made by e2e/harness/testhost.py) in which all of its processes run:

* pods get 198.18.N.0/24 and Services get ClusterIPs from 198.19.N.0/24 (RFC 2544 benchmarking
  range), both made bindable by `local` routes on the namespace's own lo — never on the host's;
* a veth pair links the namespace to the host: host end 198.18.0.{2N}/31, namespace end
  198.18.0.{2N+1}/31 (the "node address"); the host routes the two /24s via the node address, so
  tests on the host reach pods, Services and the API server (which also listens there).

The block is held with a file lock taken by `up` and inherited by every process of the cluster,
so two clusters on one machine (a developer's and the tests') never share addresses, and a
namespace whose lock nobody holds is a leftover of a crashed run.
"""

from __future__ import annotations

import fcntl
import ipaddress
import pathlib
from typing import IO

LOCK_DIR = pathlib.Path("/tmp/faiss-operator-process-kubelet")
# 2N+1 must stay a host of 198.18.0.0/24.
BLOCKS = range(1, 128)


class BlockTaken(RuntimeError):
    """Another running cluster holds the block."""


def pod_network(block: int) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(f"198.18.{block}.0/24")


def service_network(block: int) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(f"198.19.{block}.0/24")


def host_address(block: int) -> str:
    """The host's end of the veth pair to the cluster's namespace."""
    return f"198.18.0.{2 * block}"


def node_address(block: int) -> str:
    """The namespace's end of the veth pair: where the host reaches the API server."""
    return f"198.18.0.{2 * block + 1}"


def netns_name(block: int) -> str:
    return f"faiss-node-{block}"


def host_veth(block: int) -> str:
    return f"fon{block}-h"


def node_veth(block: int) -> str:
    return f"fon{block}-n"


def _lock_file(block: int) -> pathlib.Path:
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    return LOCK_DIR / f"block-{block}.lock"


def lock(block: int) -> IO[str]:
    """Hold the block while the returned file (or a process that inherited it) stays open."""
    if block not in BLOCKS:
        raise ValueError(f"address block {block} is outside {BLOCKS.start}..{BLOCKS.stop - 1}")
    handle = open(_lock_file(block), "w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise BlockTaken(f"address block {block} is held by another running cluster") from None
    return handle


def claim_block() -> tuple[int, IO[str]]:
    """The first block no running cluster holds, locked for the caller."""
    for block in BLOCKS:
        try:
            return block, lock(block)
        except BlockTaken:
            continue
    raise BlockTaken(f"all address blocks are taken (locks in {LOCK_DIR})")
