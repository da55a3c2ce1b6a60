"""Run one probe (httpGet, tcpSocket, exec) against a running container and count the results.

The thresholds and timing follow the Kubernetes API: initialDelaySeconds, periodSeconds,
timeoutSeconds, successThreshold, failureThreshold.
"""

from __future__ import annotations

import dataclasses
import http.client
import socket
import ssl
import subprocess
import time
from collections.abc import Mapping
from typing import Any

from e2e.harness.kubelet import runc

Obj = dict[str, Any]


def _port(value: int | str, container: Obj) -> int:
    if isinstance(value, int) or str(value).isdigit():
        return int(value)
    for port in container.get("ports") or []:
        if port.get("name") == value:
            return int(port["containerPort"])
    raise ValueError(f"named port {value!r} is not declared by container {container['name']!r}")


def run_once(probe: Obj, *, container: Obj, pod_ip: str, pid: int, env: Mapping[str, str],
             image_run: runc.Handle | None = None) -> tuple[bool, str]:
    """(success, message) of a single attempt."""
    timeout = float(probe.get("timeoutSeconds") or 1)
    try:
        if "httpGet" in probe:
            get = probe["httpGet"]
            host = get.get("host") or pod_ip
            port = _port(get["port"], container)
            conn: http.client.HTTPConnection
            if (get.get("scheme") or "HTTP").upper() == "HTTPS":
                conn = http.client.HTTPSConnection(host, port, timeout=timeout,
                                                   context=ssl._create_unverified_context())
            else:
                conn = http.client.HTTPConnection(host, port, timeout=timeout)
            headers = {h["name"]: h["value"] for h in get.get("httpHeaders") or []}
            headers.setdefault("User-Agent", "kube-probe/1.37")
            try:
                conn.request("GET", get.get("path") or "/", headers=headers)
                status = conn.getresponse().status
            finally:
                conn.close()
            return 200 <= status < 400, f"HTTP probe failed with statuscode: {status}"
        if "tcpSocket" in probe:
            tcp = probe["tcpSocket"]
            with socket.create_connection((tcp.get("host") or pod_ip, _port(tcp["port"], container)), timeout=timeout):
                return True, ""
        if "exec" in probe:
            if image_run is not None:  # as the container's user, with its limits, in its namespaces
                argv = image_run.exec_argv(probe["exec"]["command"])
            else:  # nsenter runs the command in the container's mount namespace, root and working dir.
                argv = ["nsenter", "-t", str(pid), "-m", "-r", "-w", "--", *probe["exec"]["command"]]
            done = subprocess.run(argv, env=dict(env), capture_output=True, timeout=timeout)
            output = (done.stdout + done.stderr).decode(errors="replace").strip()
            return done.returncode == 0, f"exec probe exited {done.returncode}: {output[:200]}"
        if "grpc" in probe:
            return False, "grpc probes are not supported by the process kubelet"
    except (OSError, subprocess.TimeoutExpired, http.client.HTTPException) as exc:
        return False, f"probe error: {exc}"
    return False, "probe has no handler"


@dataclasses.dataclass
class ProbeState:
    """Consecutive results of one probe of one container run."""

    probe: Obj
    started: float  # monotonic time the container started
    successes: int = 0
    failures: int = 0
    next_at: float = 0.0
    result: bool | None = None  # None until a threshold is crossed
    message: str = ""

    def due(self, now: float) -> bool:
        first = self.started + float(self.probe.get("initialDelaySeconds") or 0)
        return now >= max(first, self.next_at)

    def record(self, success: bool, message: str, now: float) -> None:
        self.next_at = now + float(self.probe.get("periodSeconds") or 10)
        if success:
            self.successes += 1
            self.failures = 0
            if self.successes >= int(self.probe.get("successThreshold") or 1):
                self.result = True
        else:
            self.failures += 1
            self.successes = 0
            self.message = message
            if self.failures >= int(self.probe.get("failureThreshold") or 3):
                self.result = False


def new_state(probe: Obj | None) -> ProbeState | None:
    return None if probe is None else ProbeState(probe=probe, started=time.monotonic())
