"""The Node object of this kubelet: registration, status and the heartbeat Lease.

kube-controller-manager's node lifecycle controller marks a node NotReady and evicts its pods
when its Lease in kube-node-lease stops being renewed, so the heartbeat runs all the time.
"""

from __future__ import annotations

import datetime
import os
import platform
import threading
from typing import Any

from kubernetes.client.exceptions import ApiException

from e2e.harness.kubelet import kube

Obj = dict[str, Any]
KUBELET_VERSION = "v1.37.2"
HEARTBEAT_SECONDS = 10
LEASE_SECONDS = 40


def _now(micro: bool = False) -> str:
    t = datetime.datetime.now(datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if micro else t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _memory_bytes() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


class Node:
    def __init__(self, api: kube.Kube, *, name: str, port: int, max_pods: int = 110) -> None:
        self.api = api
        self.name = name
        self.port = port
        self.max_pods = max_pods
        self._since = _now()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._heartbeat, name="node-heartbeat", daemon=True)

    def status(self) -> Obj:
        resources = {"cpu": str(os.cpu_count() or 1), "memory": str(_memory_bytes()),
                     "pods": str(self.max_pods), "ephemeral-storage": "100Gi"}
        now = _now()
        conditions = [
            {"type": kind, "status": "False", "reason": reason, "message": message,
             "lastHeartbeatTime": now, "lastTransitionTime": self._since}
            for kind, reason, message in (
                ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            )
        ]
        conditions.append({"type": "Ready", "status": "True", "reason": "KubeletReady",
                           "message": "process kubelet is posting ready status",
                           "lastHeartbeatTime": now, "lastTransitionTime": self._since})
        return {
            "capacity": resources,
            "allocatable": resources,
            "conditions": conditions,
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.port}},
            "nodeInfo": {
                "machineID": _read("/etc/machine-id"), "systemUUID": _read("/etc/machine-id"),
                "bootID": _read("/proc/sys/kernel/random/boot_id"),
                "kernelVersion": platform.release(), "osImage": "process kubelet on " + platform.system(),
                "containerRuntimeVersion": "process://0.1", "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64",
            },
        }

    def register(self) -> None:
        body = {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": self.name, "labels": {
                "kubernetes.io/hostname": self.name, "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64", "node.kubernetes.io/instance-type": "process"}},
            "status": self.status(),
        }
        try:
            self.api.request("POST", "/api/v1/nodes", body=body)
        except ApiException as exc:
            if exc.status != 409:
                raise
        self._post_status()
        self._renew_lease()
        self._thread.start()

    def _post_status(self) -> None:
        self.api.request("PATCH", f"/api/v1/nodes/{self.name}/status",
                         body={"status": self.status()}, content_type=kube.STRATEGIC)

    def _renew_lease(self) -> None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{self.name}"
        spec = {"holderIdentity": self.name, "leaseDurationSeconds": LEASE_SECONDS, "renewTime": _now(micro=True)}
        if self.api.get(path) is None:
            node = self.api.request("GET", f"/api/v1/nodes/{self.name}")
            owner = {"apiVersion": "v1", "kind": "Node", "name": self.name, "uid": node["metadata"]["uid"]}
            self.api.request("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", body={
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.name, "namespace": "kube-node-lease", "ownerReferences": [owner]},
                "spec": spec})
        else:
            self.api.request("PATCH", path, body={"spec": spec}, content_type=kube.MERGE)

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                self._renew_lease()
                self._post_status()
            except Exception:  # noqa: BLE001 - the next beat retries
                pass

    def stop(self) -> None:
        self._stop.set()
