"""Pod start time on the local cluster: the same pods from the image under runc and as processes.

Starts its own cluster (the k8s build and `make image` first), then for each runtime class creates
pods one after another and measures, on the client's clock (polled every 0.05 s), the create call
to the container running and to the pod Ready: the container imports the package's CLI and
listens on a port that a readiness probe (period 1 s) checks.

    .venv/bin/python benchmarks/pod_start.py [--pods 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from kubernetes import client

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from e2e.harness import cluster as cluster_mod  # noqa: E402
from e2e.harness.waiting import wait_for  # noqa: E402

SERVER = ("import faiss_operator.cli, http.server\n"
          "http.server.HTTPServer(('0.0.0.0', 8080), http.server.SimpleHTTPRequestHandler).serve_forever()")


def _pod(name: str, runtime: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"runtimeClassName": runtime, "terminationGracePeriodSeconds": 1,
                     "securityContext": {"runAsNonRoot": True, "runAsUser": 65532},
                     "containers": [{"name": "c", "image": "faiss-operator:dev", "command": ["python", "-c", SERVER],
                                     "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}]}}


def measure(core: client.CoreV1Api, namespace: str, runtime: str, count: int) -> tuple[list[float], list[float]]:
    started, ready = [], []
    for i in range(count):
        name = f"{runtime}-{i}"
        t0 = time.monotonic()
        core.create_namespaced_pod(namespace, _pod(name, runtime))  # type: ignore[arg-type]

        def running() -> bool:
            status = core.read_namespaced_pod(name, namespace).status
            statuses = (status.container_statuses if status else None) or []
            return bool(statuses and statuses[0].state and statuses[0].state.running)

        def is_ready() -> bool:
            status = core.read_namespaced_pod(name, namespace).status
            conds = (status.conditions if status else None) or []
            return any(c.type == "Ready" and c.status == "True" for c in conds)
        wait_for(running, 120, f"pod {name} running", interval=0.05)
        started.append(time.monotonic() - t0)
        wait_for(is_ready, 120, f"pod {name} Ready", interval=0.05)
        ready.append(time.monotonic() - t0)
        core.delete_namespaced_pod(name, namespace)
    return started, ready


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pod-start-") as state:
        c = cluster_mod.Cluster(Path(state))
        c.up(timeout=180)
        try:
            core = client.CoreV1Api(c.api_client())
            namespace = f"bench-{uuid.uuid4().hex[:6]}"
            core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})  # type: ignore[arg-type]
            wait_for(lambda: core.list_namespaced_service_account(namespace).items, 30, "default service account")
            for runtime in ("runc", "process"):
                started, ready = measure(core, namespace, runtime, args.pods)
                print(f"{runtime:8s} create->running median {statistics.median(started):.2f}s "
                      f"(max {max(started):.2f}s); create->Ready median {statistics.median(ready):.2f}s "
                      f"(max {max(ready):.2f}s); {args.pods} pods")
        finally:
            c.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
