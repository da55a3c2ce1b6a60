"""The node agent's main loop: list and watch the pods bound to this node, hand each to its worker.

Pod addresses come from the cluster's address block (see e2e/harness/addresses.py); `up` made
them local inside the network namespace this process runs in, and holds the block for it.
"""

from __future__ import annotations

import logging
import pathlib
import threading
import time
from typing import Any

from kubernetes.client.exceptions import ApiException

from e2e.harness import addresses
from e2e.harness.kubelet import kube, logserver, node, pods, services

Obj = dict[str, Any]
log = logging.getLogger("kubelet.agent")


class AddressBlock:
    """The pod addresses of this node's block; .1 is left out, pods get .2 onwards."""

    def __init__(self, block: int) -> None:
        self.block = block
        self.network = addresses.pod_network(block)
        self._used: set[str] = set()
        self._lock = threading.Lock()

    def allocate(self) -> str:
        with self._lock:
            for address in list(self.network.hosts())[1:]:
                ip = str(address)
                if ip not in self._used:
                    self._used.add(ip)
                    return ip
        raise RuntimeError(f"pod address block {self.network} is exhausted")

    def release(self, ip: str) -> None:
        with self._lock:
            self._used.discard(ip)


class Agent:
    def __init__(self, ctx: pods.NodeContext, *, port: int, tls_cert: pathlib.Path, tls_key: pathlib.Path,
                 address_block: int) -> None:
        self.ctx = ctx
        self.node = node.Node(ctx.kube, name=ctx.node_name, port=port)
        self.addresses = AddressBlock(address_block)
        self.workers: dict[str, pods.PodWorker] = {}
        self.finished: set[str] = set()  # uids whose worker has ended: never started again
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        self.logs = logserver.LogServer(state_dir=ctx.state_dir, port=port, cert=tls_cert, key=tls_key,
                                        is_running=self._container_running)

    def _container_running(self, namespace: str, pod: str, container: str) -> bool:
        with self._lock:
            workers = list(self.workers.values())
        return any(w.namespace == namespace and w.pod_name == pod and
                   any(c.name == container and c.running for c in w.all_containers) for w in workers)

    def _done(self, worker: pods.PodWorker) -> None:
        with self._lock:
            if self.workers.get(worker.uid) is worker:
                del self.workers[worker.uid]
            self.finished.add(worker.uid)
        if worker.pod_ip != self.ctx.host_ip:
            self.addresses.release(worker.pod_ip)
        log.info("Pod worker ended pod=%s/%s", worker.namespace, worker.pod_name)

    def sync(self, pod: Obj) -> None:
        uid = pod["metadata"]["uid"]
        with self._lock:
            worker = self.workers.get(uid)
            if worker is not None:
                worker.update(pod)
                return
            if self.stopping.is_set():
                return
            if pod["metadata"].get("deletionTimestamp"):
                # Nothing of it runs here (any worker has finished): complete the deletion.
                if uid not in self.finished:
                    self.finished.add(uid)
                    self._force_delete(pod)
                return
            if uid in self.finished or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                return
            host_network = bool(pod["spec"].get("hostNetwork"))
            ip = self.ctx.host_ip if host_network else self.addresses.allocate()
            worker = pods.PodWorker(self.ctx, pod, ip, self._done)
            self.workers[uid] = worker
        log.info("Pod worker started pod=%s/%s ip=%s", worker.namespace, worker.pod_name, worker.pod_ip)
        worker.start()

    def _force_delete(self, pod: Obj) -> None:
        meta = pod["metadata"]
        try:
            self.ctx.kube.request("DELETE", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
                                  body={"gracePeriodSeconds": 0, "preconditions": {"uid": meta["uid"]}})
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

    def removed(self, pod: Obj) -> None:
        with self._lock:
            worker = self.workers.get(pod["metadata"]["uid"])
        if worker is not None:
            worker.update(None)

    def watch_loop(self) -> None:
        selector = {"fieldSelector": f"spec.nodeName={self.ctx.node_name}"}
        while not self.stopping.is_set():
            try:
                listing = self.ctx.kube.request("GET", "/api/v1/pods", query=selector)
                seen = set()
                for pod in listing.get("items") or []:
                    seen.add(pod["metadata"]["uid"])
                    self.sync(pod)
                with self._lock:
                    gone = [w for uid, w in self.workers.items() if uid not in seen]
                for w in gone:
                    w.update(None)
                version = listing["metadata"]["resourceVersion"]
                while not self.stopping.is_set():
                    query = {**selector, "resourceVersion": version, "allowWatchBookmarks": "true",
                             "timeoutSeconds": 60}
                    for event in self.ctx.kube.watch("/api/v1/pods", query, timeout=75):
                        obj = event["object"]
                        if event["type"] == "ERROR":
                            raise ApiException(status=int(obj.get("code", 500)), reason=obj.get("message"))
                        version = obj["metadata"].get("resourceVersion", version)
                        if event["type"] in ("ADDED", "MODIFIED"):
                            self.sync(obj)
                        elif event["type"] == "DELETED":
                            self.removed(obj)
            except Exception as exc:  # noqa: BLE001 - relist after any break of the watch
                if self.stopping.is_set():
                    return
                log.warning("Pod watch broke, relisting: %s", exc)
                time.sleep(1)

    def run(self) -> None:
        self.node.register()
        self.logs.start()
        log.info("Node registered node=%s pod-addresses=%s", self.ctx.node_name, self.addresses.network)
        threading.Thread(target=self.watch_loop, name="pod-watch", daemon=True).start()
        proxy = services.ServiceProxy(self.ctx.kube)
        threading.Thread(target=proxy.run, args=(self.stopping,), name="service-proxy", daemon=True).start()
        while not self.stopping.wait(1):
            pass
        self.shutdown()

    def shutdown(self) -> None:
        """Stop every pod's processes (the API objects stay, as when a real node goes down)."""
        self.node.stop()
        with self._lock:
            workers = list(self.workers.values())
        for w in workers:
            w.shutdown()
        for w in workers:
            w.join(timeout=pods.SHUTDOWN_GRACE_SECONDS + 10)
        self.logs.stop()
