"""The kubelet's Service proxy sends each ClusterIP:port to the ready endpoints of its Service."""

from __future__ import annotations

from e2e.harness.kubelet import services


def service(name: str, ip: str, ports: list[dict[str, object]]) -> dict[str, object]:
    return {"metadata": {"namespace": "search", "name": name}, "spec": {"clusterIP": ip, "ports": ports}}


def endpoint_slice(owner: str, ports: list[dict[str, object]], endpoints: list[tuple[str, bool | None]]) -> dict[str, object]:
    return {
        "metadata": {"namespace": "search", "name": f"{owner}-x", "labels": {"kubernetes.io/service-name": owner}},
        "ports": ports,
        "endpoints": [{"addresses": [ip], "conditions": {} if ready is None else {"ready": ready}}
                      for ip, ready in endpoints],
    }


def test_only_ready_endpoints_of_the_matching_port_name_are_backends() -> None:
    svcs = [service("alerts", "198.19.1.10", [{"name": "http", "port": 80}, {"name": "metrics", "port": 9090}])]
    slices = [endpoint_slice("alerts", [{"name": "http", "port": 8080}, {"name": "metrics", "port": 9100}],
                             [("198.18.1.2", True), ("198.18.1.3", False), ("198.18.1.4", None)])]
    assert services.desired(svcs, slices) == {
        ("198.19.1.10", 80): ("search/alerts:80", [("198.18.1.2", 8080), ("198.18.1.4", 8080)]),
        ("198.19.1.10", 9090): ("search/alerts:9090", [("198.18.1.2", 9100), ("198.18.1.4", 9100)]),
    }


def test_headless_and_udp_services_are_not_proxied_and_a_service_without_endpoints_refuses() -> None:
    svcs = [service("headless", "None", [{"port": 80}]),
            service("dns", "198.19.1.11", [{"port": 53, "protocol": "UDP"}]),
            service("empty", "198.19.1.12", [{"port": 80}])]
    assert services.desired(svcs, []) == {("198.19.1.12", 80): ("search/empty:80", [])}
