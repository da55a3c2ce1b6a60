"""Services that route: kube-proxy's userspace mode, for TCP, inside the kubelet.

ClusterIPs come from the cluster's local Service block (e2e/harness/addresses.py), so the proxy
can listen on each ClusterIP:port itself and hand every new connection to a ready endpoint from
the Service's EndpointSlices, chosen at random. Traffic therefore splits in proportion to ready
pods, as with kube-proxy. Changes are picked up within a second (the proxy re-reads Services and
EndpointSlices every second).
"""

from __future__ import annotations

import logging
import random
import socket
import threading
from typing import Any

from e2e.harness.kubelet import kube

Obj = dict[str, Any]
log = logging.getLogger("kubelet.services")
SYNC_SECONDS = 1.0
Backend = tuple[str, int]


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Listener:
    """One ClusterIP:port; forwards each accepted connection to one backend."""

    def __init__(self, address: Backend, name: str) -> None:
        self.address = address
        self.name = name
        self.backends: list[Backend] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(address)
        self.sock.listen(128)
        threading.Thread(target=self._accept, name=f"service-{name}", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._forward, args=(client,), daemon=True).start()

    def _forward(self, client: socket.socket) -> None:
        candidates = list(self.backends)
        random.shuffle(candidates)
        for backend in candidates:
            try:
                upstream = socket.create_connection(backend, timeout=2)
            except OSError:
                continue
            upstream.settimeout(None)
            threading.Thread(target=_pump, args=(client, upstream), daemon=True).start()
            _pump(upstream, client)
            client.close()
            upstream.close()
            return
        client.close()  # no ready endpoint: refuse, as kube-proxy does

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def desired(services: list[Obj], slices: list[Obj]) -> dict[Backend, tuple[str, list[Backend]]]:
    """(ClusterIP, port) -> (service name, ready backends) for every TCP port of every Service."""
    by_service: dict[tuple[str, str], list[Obj]] = {}
    for sl in slices:
        meta = sl["metadata"]
        owner = (meta.get("labels") or {}).get("kubernetes.io/service-name")
        if owner:
            by_service.setdefault((meta["namespace"], owner), []).append(sl)
    out: dict[Backend, tuple[str, list[Backend]]] = {}
    for svc in services:
        meta, spec = svc["metadata"], svc.get("spec") or {}
        ip = spec.get("clusterIP")
        if not ip or ip == "None":
            continue
        for port in spec.get("ports") or []:
            if (port.get("protocol") or "TCP") != "TCP":
                continue
            backends: list[Backend] = []
            for sl in by_service.get((meta["namespace"], meta["name"]), []):
                numbers = [p.get("port") for p in sl.get("ports") or [] if (p.get("name") or "") == (port.get("name") or "")]
                if not numbers or numbers[0] is None:
                    continue
                for endpoint in sl.get("endpoints") or []:
                    if (endpoint.get("conditions") or {}).get("ready") is False:
                        continue
                    backends += [(address, int(numbers[0])) for address in endpoint.get("addresses") or []]
            out[(ip, int(port["port"]))] = (f"{meta['namespace']}/{meta['name']}:{port['port']}", sorted(backends))
    return out


class ServiceProxy:
    def __init__(self, api: kube.Kube) -> None:
        self.api = api
        self.listeners: dict[Backend, Listener] = {}

    def sync(self) -> None:
        services = self.api.request("GET", "/api/v1/services").get("items") or []
        slices = self.api.request("GET", "/apis/discovery.k8s.io/v1/endpointslices").get("items") or []
        want = desired(services, slices)
        for address in set(self.listeners) - set(want):
            self.listeners.pop(address).close()
        for address, (name, backends) in want.items():
            listener = self.listeners.get(address)
            if listener is None:
                try:
                    listener = self.listeners[address] = Listener(address, name)
                except OSError as exc:
                    log.warning("Cannot listen for Service service=%s address=%s:%s error=%s", name, *address, exc)
                    continue
            listener.backends = backends

    def run(self, stopping: threading.Event) -> None:
        while not stopping.wait(SYNC_SECONDS):
            try:
                self.sync()
            except Exception as exc:  # noqa: BLE001 - the next round retries
                log.warning("Service sync failed: %s", exc)
        for listener in self.listeners.values():
            listener.close()
