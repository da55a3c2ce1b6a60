"""Each cluster's block N names its namespace, veth pair and address ranges, none shared."""

from __future__ import annotations

import ipaddress

import pytest

from e2e.harness import addresses


def test_blocks_have_disjoint_links_pods_and_services() -> None:
    seen: set[str] = set()
    for block in addresses.BLOCKS:
        link = ipaddress.IPv4Network(f"{addresses.host_address(block)}/31")
        assert addresses.node_address(block) == str(link[1])
        assert link.subnet_of(ipaddress.IPv4Network("198.18.0.0/24"))
        names = {str(link), str(addresses.pod_network(block)), str(addresses.service_network(block)),
                 addresses.netns_name(block), addresses.host_veth(block), addresses.node_veth(block)}
        assert not names & seen
        seen |= names
        assert len(addresses.host_veth(block)) <= 15  # the kernel's interface name limit


@pytest.mark.parametrize("block", [0, 128, 255])
def test_a_block_outside_1_to_127_is_refused(block: int) -> None:
    with pytest.raises(ValueError, match="outside 1..127"):
        addresses.lock(block)
