"""What the process kubelet does over a pod's life: in-cluster access, liveness restarts, graceful
deletion with SIGTERM first and SIGKILL after the grace period."""

from __future__ import annotations

import pathlib
import time

import pytest
from kubernetes import client

from e2e.harness.waiting import wait_for

pytestmark = pytest.mark.integration

IN_CLUSTER = """
from kubernetes import client, config
config.load_incluster_config()
review = client.AuthenticationV1Api().create_self_subject_review({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
print(review.status.user_info.username)
"""


def test_a_pod_reaches_the_api_server_with_in_cluster_config(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(namespace, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "incluster"},
        "spec": {"restartPolicy": "Never", "containers": [
            {"name": "c", "image": "faiss-operator:dev", "command": ["python", "-c", IN_CLUSTER],  # with the client
             "terminationMessagePolicy": "FallbackToLogsOnError"}]},
    })
    pod = wait_for(lambda: (p := core.read_namespaced_pod("incluster", namespace)).status.phase
                   in ("Succeeded", "Failed") and p, 60, "pod incluster to finish")
    log = core.read_namespaced_pod_log("incluster", namespace)
    assert pod.status.phase == "Succeeded", log
    assert log.strip() == f"system:serviceaccount:{namespace}:default"


def test_failing_liveness_probe_restarts_the_container(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(namespace, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "unhealthy"},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
            # Exits on SIGTERM: as a pid namespace's init (runc), `sleep` alone would ignore it and be
            # SIGKILLed after the grace period (137), as on any kubelet.
            "name": "c", "image": "python", "command": ["sh", "-c", "trap 'exit 143' TERM; sleep 600 & wait"],
            "livenessProbe": {"exec": {"command": ["false"]}, "periodSeconds": 1, "failureThreshold": 2},
        }]},
    })
    pod = wait_for(lambda: (p := core.read_namespaced_pod("unhealthy", namespace)).status.container_statuses
                   and p.status.container_statuses[0].restart_count >= 1 and p, 60, "a liveness restart")
    last = pod.status.container_statuses[0].last_state.terminated
    assert last.exit_code == 143  # SIGTERM
    assert last.message.startswith("Liveness probe failed")


def test_deletion_sends_sigterm_then_sigkill_after_the_grace_period(
        api: client.ApiClient, namespace: str, tmp_path: pathlib.Path) -> None:
    core = client.CoreV1Api(api)
    tmp_path.chmod(0o777)
    script = """
import signal, time
def term(signum, frame):
    open('/out/signals', 'a').write('TERM\\n')
signal.signal(signal.SIGTERM, term)
open('/out/started', 'w').write('yes')
while True:
    time.sleep(0.1)
"""
    core.create_namespaced_pod(namespace, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "stubborn"},
        "spec": {"terminationGracePeriodSeconds": 2,
                 "volumes": [{"name": "out", "hostPath": {"path": str(tmp_path), "type": "Directory"}}],
                 "containers": [{"name": "c", "image": "python", "command": ["python", "-c", script],
                                 "volumeMounts": [{"name": "out", "mountPath": "/out"}]}]},
    })
    wait_for(lambda: (tmp_path / "started").exists(), 60, "the container to start")
    started = time.monotonic()
    core.delete_namespaced_pod("stubborn", namespace)

    def gone() -> bool:
        try:
            core.read_namespaced_pod("stubborn", namespace)
            return False
        except client.exceptions.ApiException as exc:
            return exc.status == 404
    wait_for(gone, 30, "pod stubborn deleted")
    elapsed = time.monotonic() - started
    assert (tmp_path / "signals").read_text() == "TERM\n"
    assert 2 <= elapsed < 15, f"deletion took {elapsed:.1f}s with a grace period of 2s"
