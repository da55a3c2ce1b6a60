"""Volumes on the process kubelet: claims backed by host directories, configMaps, secrets, env."""

from __future__ import annotations

import base64

import pytest
from kubernetes import client

from e2e.harness.waiting import wait_for

pytestmark = pytest.mark.integration


def finished(core: client.CoreV1Api, namespace: str, name: str) -> client.V1Pod | None:
    pod = core.read_namespaced_pod(name, namespace)
    return pod if pod.status.phase in ("Succeeded", "Failed") else None


def run_to_end(core: client.CoreV1Api, namespace: str, name: str, spec: dict[str, object]) -> client.V1Pod:
    core.create_namespaced_pod(namespace, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                                           "spec": {"restartPolicy": "Never", **spec}})
    pod = wait_for(lambda: finished(core, namespace, name), 90, f"pod {name} to finish")
    assert pod.status.phase == "Succeeded", core.read_namespaced_pod_log(name, namespace)
    return pod


def test_file_written_by_a_job_into_a_claim_is_read_by_a_later_pod(api: client.ApiClient, namespace: str) -> None:
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    core.create_namespaced_persistent_volume_claim(namespace, {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "artifacts"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    })
    volume = {"name": "artifacts", "persistentVolumeClaim": {"claimName": "artifacts"}}
    batch.create_namespaced_job(namespace, {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "writer"},
        "spec": {"backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never", "volumes": [volume],
            "containers": [{"name": "w", "image": "python", "volumeMounts": [{"name": "artifacts", "mountPath": "/artifacts"}],
                            "command": ["python", "-c", "open('/artifacts/index.bin', 'w').write('revision-5d41c2')"]}],
        }}},
    })
    wait_for(lambda: any(c.type == "Complete" and c.status == "True"
                         for c in batch.read_namespaced_job("writer", namespace).status.conditions or []),
             90, "job writer Complete")
    claim = core.read_namespaced_persistent_volume_claim("artifacts", namespace)
    assert claim.status.phase == "Bound"
    assert core.read_persistent_volume(claim.spec.volume_name).spec.host_path is not None

    run_to_end(core, namespace, "reader", {
        "volumes": [volume],
        "containers": [{"name": "r", "image": "python", "command": ["cat", "/data/index.bin"],
                        "volumeMounts": [{"name": "artifacts", "mountPath": "/data", "readOnly": True}]}],
    })
    assert core.read_namespaced_pod_log("reader", namespace) == "revision-5d41c2"


def test_configmap_secret_and_downward_api_reach_files_and_env(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(namespace, {"apiVersion": "v1", "kind": "ConfigMap",
                                                  "metadata": {"name": "conf"}, "data": {"index.yaml": "m: 32"}})
    core.create_namespaced_secret(namespace, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
                                              "data": {"token": base64.b64encode(b"s3cr3t").decode()}})
    script = (
        "import os; print(open('/etc/faiss/index.yaml').read(), open('/etc/creds/token').read(),"
        " open('/etc/podinfo/name').read(), os.environ['TOKEN'], os.environ['GREETING'], os.environ['MODE'],"
        " os.path.exists('/var/run/secrets/kubernetes.io/serviceaccount/token'), sep='|')"
    )
    run_to_end(core, namespace, "reader", {
        "volumes": [
            {"name": "conf", "configMap": {"name": "conf"}},
            {"name": "creds", "secret": {"secretName": "creds"}},
            {"name": "podinfo", "downwardAPI": {"items": [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}},
        ],
        "containers": [{
            "name": "r", "image": "python", "command": ["python", "-c", script],
            "env": [
                {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
                {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "conf", "key": "index.yaml"}}},
                {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "GREETING", "value": "hello $(NAME) $$(NAME)"},
            ],
            "volumeMounts": [{"name": "conf", "mountPath": "/etc/faiss"},
                             {"name": "creds", "mountPath": "/etc/creds"},
                             {"name": "podinfo", "mountPath": "/etc/podinfo"}],
        }],
    })
    out = core.read_namespaced_pod_log("reader", namespace).strip()
    assert out == "m: 32|s3cr3t|reader|s3cr3t|hello reader $(NAME)|m: 32|True"


def test_init_containers_run_in_order_before_the_containers(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    mount = [{"name": "work", "mountPath": "/work-dir"}]
    pod = run_to_end(core, namespace, "ordered", {
        "volumes": [{"name": "work", "emptyDir": {}}],
        "initContainers": [
            {"name": f"init-{i}", "image": "python", "volumeMounts": mount,
             "command": ["sh", "-c", f"echo step-{i} >> /work-dir/steps"]} for i in (1, 2)],
        "containers": [{"name": "main", "image": "python", "volumeMounts": mount,
                        "command": ["cat", "/work-dir/steps"]}],
    })
    assert core.read_namespaced_pod_log("ordered", namespace) == "step-1\nstep-2\n"
    assert [s.state.terminated.reason for s in pod.status.init_container_statuses] == ["Completed", "Completed"]


def test_host_network_pod_gets_the_node_address(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    pod = run_to_end(core, namespace, "hostnet", {
        "hostNetwork": True,
        "containers": [{"name": "c", "image": "python", "command": ["true"]}],
    })
    assert pod.status.pod_ip == pod.status.host_ip == "127.0.0.1"
