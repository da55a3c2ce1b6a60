"""Deployments and Jobs on the process kubelet: pods get addresses, answer, finish, go away."""

from __future__ import annotations

import pathlib
import urllib.request

import pytest
from kubernetes import client

from e2e.harness import cluster as cluster_mod
from e2e.harness import processes
from e2e.harness.waiting import wait_for

pytestmark = pytest.mark.integration

SERVER = """
import http.server, os
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (os.environ["POD_NAME"] + " " + os.environ["POD_IP"]).encode()
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
"""


def server_deployment(name: str, replicas: int) -> dict[str, object]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {
            "replicas": replicas, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {
                "terminationGracePeriodSeconds": 5,
                "runtimeClassName": "process",  # pid_of reads the pod's host process

                "containers": [{
                    "name": "web", "image": "python:3.11", "command": ["python", "-c", SERVER],
                    "ports": [{"containerPort": 8080, "name": "http"}],
                    "env": [
                        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    ],
                    "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1},
                    "livenessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 2},
                }],
            }},
        },
    }


def running_pods(core: client.CoreV1Api, namespace: str, app: str) -> list[client.V1Pod]:
    pods = core.list_namespaced_pod(namespace, label_selector=f"app={app}").items
    return [p for p in pods if p.metadata.deletion_timestamp is None]


def pid_of(pod: client.V1Pod) -> int:
    container_id = pod.status.container_statuses[0].container_id
    assert container_id.startswith("process://"), container_id
    return int(container_id.removeprefix("process://"))


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.read().decode()


def test_deployment_of_two_becomes_available_with_two_answering_addresses(api: client.ApiClient, namespace: str) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    apps.create_namespaced_deployment(namespace, server_deployment("web", 2))

    def available() -> bool:
        d = apps.read_namespaced_deployment("web", namespace)
        return any(c.type == "Available" and c.status == "True" for c in d.status.conditions or []) \
            and d.status.ready_replicas == 2
    wait_for(available, 90, "deployment web Available with 2 ready replicas")

    pods = running_pods(core, namespace, "web")
    ips = {p.status.pod_ip for p in pods}
    assert len(pods) == 2 and len(ips) == 2, ips
    for pod in pods:
        assert pod.status.phase == "Running"
        assert get(f"http://{pod.status.pod_ip}:8080/") == f"{pod.metadata.name} {pod.status.pod_ip}"


def test_scaling_down_stops_the_process_of_the_removed_pod(api: client.ApiClient, namespace: str) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    apps.create_namespaced_deployment(namespace, server_deployment("web", 2))
    wait_for(lambda: len([p for p in running_pods(core, namespace, "web") if p.status.pod_ip
                          and p.status.container_statuses and p.status.container_statuses[0].ready]) == 2,
             90, "2 ready pods")
    before = {p.metadata.name: pid_of(p) for p in running_pods(core, namespace, "web")}
    start_times = {name: processes.start_time_of(pid) for name, pid in before.items()}
    assert all(start_times.values())

    apps.patch_namespaced_deployment_scale("web", namespace, {"spec": {"replicas": 1}})

    def one_pod_left() -> set[str]:
        names = {p.metadata.name for p in core.list_namespaced_pod(namespace, label_selector="app=web").items}
        return names if len(names) == 1 else set()
    left = wait_for(one_pod_left, 60, "the scaled-down pod to be deleted")
    (removed,) = set(before) - left
    record = processes.Record(name=removed, pid=before[removed], start_time=start_times[removed] or 0)
    assert not processes.alive(record), f"process {record.pid} of deleted pod {removed} still runs"
    (kept,) = left
    assert processes.alive(processes.Record(name=kept, pid=before[kept], start_time=start_times[kept] or 0))


def test_job_completes_and_its_termination_message_is_in_the_pod_status(
        api: client.ApiClient, namespace: str, cluster: cluster_mod.Cluster) -> None:
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    script = "open('/dev/termination-log', 'w').write('{\"vectors\": 42}'); print('built')"
    batch.create_namespaced_job(namespace, {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "build"},
        "spec": {"backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "build", "image": "faiss-operator:dev", "command": ["python", "-c", script]}],
        }}},
    })

    def complete() -> bool:
        job = batch.read_namespaced_job("build", namespace)
        return any(c.type == "Complete" and c.status == "True" for c in job.status.conditions or [])
    wait_for(complete, 90, "job build Complete")

    (pod,) = core.list_namespaced_pod(namespace, label_selector="job-name=build").items
    assert pod.status.phase == "Succeeded"
    terminated = pod.status.container_statuses[0].state.terminated
    assert terminated.exit_code == 0 and terminated.reason == "Completed"
    assert terminated.message == '{"vectors": 42}'
    assert core.read_namespaced_pod_log(pod.metadata.name, namespace).strip() == "built"
    assert cluster.container_log(namespace, pod.metadata.name, "build").strip() == "built"


def test_failed_container_reports_exit_code_and_restarts_count(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    for name, policy in (("never", "Never"), ("always", "Always")):
        core.create_namespaced_pod(namespace, {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"restartPolicy": policy, "containers": [{
                "name": "main", "image": "python", "command": ["python", "-c", "import sys; sys.exit(3)"],
                "terminationMessagePolicy": "FallbackToLogsOnError"}]},
        })
    failed = wait_for(lambda: (p := core.read_namespaced_pod("never", namespace)).status.phase == "Failed" and p,
                      60, "pod never Failed")
    terminated = failed.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (3, "Error")

    restarted = wait_for(
        lambda: (p := core.read_namespaced_pod("always", namespace)).status.container_statuses
        and p.status.container_statuses[0].restart_count >= 1 and p, 60, "pod always restarted once")
    status = restarted.status.container_statuses[0]
    assert restarted.status.phase == "Running"
    assert status.last_state.terminated.exit_code == 3


def test_exec_readiness_probe_runs_inside_the_container(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(namespace, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probed"},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
            "name": "main", "image": "python",
            # /tmp is the container's own: the host's /tmp never gets the file.
            "command": ["sh", "-c", "sleep 1; touch /tmp/probe-ready-$(POD); exec sleep 600"],
            "env": [{"name": "POD", "value": namespace}],
            "readinessProbe": {"exec": {"command": ["cat", f"/tmp/probe-ready-{namespace}"]}, "periodSeconds": 1},
        }]},
    })
    ready = wait_for(lambda: (p := core.read_namespaced_pod("probed", namespace)).status.container_statuses
                     and p.status.container_statuses[0].ready and p, 60, "pod probed Ready")
    assert any(c.type == "Ready" and c.status == "True" for c in ready.status.conditions)
    assert not pathlib.Path(f"/tmp/probe-ready-{namespace}").exists()


def test_service_cluster_ip_spreads_connections_over_ready_pods(api: client.ApiClient, namespace: str) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    discovery = client.DiscoveryV1Api(api)
    apps.create_namespaced_deployment(namespace, server_deployment("web", 2))
    service = core.create_namespaced_service(namespace, {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]},
    })
    ip = service.spec.cluster_ip

    def ready_endpoints() -> int:
        slices = discovery.list_namespaced_endpoint_slice(namespace, label_selector="kubernetes.io/service-name=web")
        return sum(1 for s in slices.items for e in s.endpoints or [] if e.conditions.ready)
    wait_for(lambda: ready_endpoints() == 2, 90, "2 ready endpoints of Service web")

    pod_names = {p.metadata.name for p in running_pods(core, namespace, "web")}
    answered: set[str] = set()

    def both_pods_answered() -> bool:
        try:
            answered.add(get(f"http://{ip}:80/").split()[0])
        except OSError:
            pass
        return answered == pod_names
    wait_for(both_pods_answered, 30, f"both pods {sorted(pod_names)} to answer through {ip}:80")
