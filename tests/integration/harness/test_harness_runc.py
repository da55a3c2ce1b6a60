"""Pods run from the project's image under runc (runtimeClassName: runc) get what a kubelet
enforces: a read-only root refuses writes, runAsNonRoot refuses a root user with the kubelet's
message, a container over its memory limit is OOMKilled with 137, fsGroup makes a claim writable
for a non-root user (and without it the same write is refused)."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
from typing import Any

import pytest
from kubernetes import client

from e2e.harness import paths
from e2e.harness.kubelet import images
from e2e.harness.waiting import wait_for

pytestmark = pytest.mark.integration
IMAGE = "faiss-operator:dev"


@pytest.fixture(scope="module", autouse=True)
def image(project_image: None) -> None:
    """The image `make image` builds (tests/integration/conftest.py), even on a cluster from E2E_KUBECONFIG."""


def pod_body(name: str, container: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"runtimeClassName": "runc", "restartPolicy": "Never", "terminationGracePeriodSeconds": 2,
                     "containers": [{"name": "c", "image": IMAGE, **container}], **spec}}


def finished(core: client.CoreV1Api, namespace: str, name: str) -> client.V1Pod | None:
    pod = core.read_namespaced_pod(name, namespace)
    return pod if pod.status.phase in ("Succeeded", "Failed") else None


def terminated(pod: client.V1Pod) -> dict[str, Any]:
    state = pod.status.container_statuses[0].state.terminated
    return {"reason": state.reason, "exitCode": state.exit_code}


def test_a_read_only_root_filesystem_refuses_writes_and_a_volume_takes_them(api: client.ApiClient,
                                                                            namespace: str) -> None:
    core = client.CoreV1Api(api)
    # One stream (exec 2>&1): the kubelet reads stdout and stderr on pipes of their own, so the
    # order of "ok" and sh's error in the log is the script's only if both go to one of them.
    script = "exec 2>&1; echo ok > /tmp/scratch/file && cat /tmp/scratch/file && echo x > /opt/probe"
    core.create_namespaced_pod(namespace, pod_body("ro", {
        "command": ["sh", "-c", script],
        "securityContext": {"readOnlyRootFilesystem": True},
        "volumeMounts": [{"name": "scratch", "mountPath": "/tmp/scratch"}],
    }, volumes=[{"name": "scratch", "emptyDir": {}}]))
    pod = wait_for(lambda: finished(core, namespace, "ro"), 90, "pod ro to finish")
    assert (pod.status.phase, terminated(pod)) == ("Failed", {"reason": "Error", "exitCode": 2})
    assert pod.status.container_statuses[0].container_id.startswith("runc://")
    assert core.read_namespaced_pod_log("ro", namespace) == \
        "ok\nsh: 1: cannot create /opt/probe: Read-only file system\n"


# keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0), syscall 250 on x86_64: a syscall
# containerd's RuntimeDefault refuses; the script prints what happened and exits with the errno.
KEYCTL = (
    "import ctypes, sys; libc = ctypes.CDLL(None, use_errno=True); "
    "r = libc.syscall(250, 0, -3, 0); e = ctypes.get_errno() if r == -1 else 0; "
    "print('keyctl', 'refused, errno' if e else 'allowed, errno', e); sys.exit(e)"
)


@pytest.mark.parametrize(("profile", "exit_code", "printed"), [
    ("RuntimeDefault", 1, "keyctl refused, errno 1\n"),  # EPERM, as containerd's profile answers
    ("Unconfined", 0, "keyctl allowed, errno 0\n"),
])
def test_seccomp_runtime_default_refuses_a_forbidden_syscall(api: client.ApiClient, namespace: str,
                                                             profile: str, exit_code: int, printed: str) -> None:
    core = client.CoreV1Api(api)
    name = f"seccomp-{profile.lower()}"
    core.create_namespaced_pod(namespace, pod_body(name, {"command": ["python", "-c", KEYCTL]},
                                                   securityContext={"seccompProfile": {"type": profile}}))
    pod = wait_for(lambda: finished(core, namespace, name), 90, f"pod {name} to finish")
    assert (pod.status.phase, terminated(pod)) == (
        ("Failed", {"reason": "Error", "exitCode": 1}) if exit_code else ("Succeeded", {"reason": "Completed", "exitCode": 0}))
    assert core.read_namespaced_pod_log(name, namespace) == printed


def test_run_as_non_root_refuses_a_root_user_with_the_kubelets_message(api: client.ApiClient,
                                                                      namespace: str) -> None:
    core = client.CoreV1Api(api)
    created = core.create_namespaced_pod(namespace, pod_body("root", {
        "command": ["true"], "securityContext": {"runAsNonRoot": True, "runAsUser": 0}}))
    uid = created.metadata.uid

    def refused() -> client.V1ContainerStateWaiting | None:
        statuses = core.read_namespaced_pod("root", namespace).status.container_statuses or []
        waiting = statuses[0].state.waiting if statuses else None
        return waiting if waiting is not None and waiting.reason == "CreateContainerConfigError" else None
    waiting = wait_for(refused, 60, "pod root refused with CreateContainerConfigError")
    assert waiting.message == (f"container's runAsUser breaks non-root policy "
                               f"(pod: \"root_{namespace}({uid})\", container: c)")
    assert core.read_namespaced_pod("root", namespace).status.phase == "Pending"


def test_a_root_image_user_is_refused_and_the_images_non_root_user_is_accepted(api: client.ApiClient,
                                                                                 namespace: str) -> None:
    core = client.CoreV1Api(api)
    as_root = core.create_namespaced_pod(namespace, pod_body("base", {
        "image": "python:3.11", "command": ["true"], "securityContext": {"runAsNonRoot": True}}))
    core.create_namespaced_pod(namespace, pod_body("nonroot", {
        "command": ["id", "-u"], "securityContext": {"runAsNonRoot": True}}))

    def message() -> str | None:
        statuses = core.read_namespaced_pod("base", namespace).status.container_statuses or []
        waiting = statuses[0].state.waiting if statuses else None
        return waiting.message if waiting is not None and waiting.reason == "CreateContainerConfigError" else None
    assert wait_for(message, 60, "pod base refused") == (
        f"container has runAsNonRoot and image will run as root (pod: \"base_{namespace}({as_root.metadata.uid})\", "
        "container: c)")
    pod = wait_for(lambda: finished(core, namespace, "nonroot"), 90, "pod nonroot to finish")
    assert pod.status.phase == "Succeeded"
    assert core.read_namespaced_pod_log("nonroot", namespace) == "65532\n"


def test_a_container_over_its_memory_limit_is_oom_killed_with_137(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    hog = "chunks = []\nwhile True:\n    chunks.append(bytearray(10 * 2**20))"
    core.create_namespaced_pod(namespace, pod_body("hog", {
        "command": ["python", "-c", hog], "resources": {"limits": {"memory": "64Mi", "cpu": "500m"}}}))
    pod = wait_for(lambda: finished(core, namespace, "hog"), 90, "pod hog to finish")
    assert (pod.status.phase, terminated(pod)) == ("Failed", {"reason": "OOMKilled", "exitCode": 137})


def test_the_same_container_under_its_limit_completes(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(namespace, pod_body("fits", {
        "command": ["python", "-c", "chunk = bytearray(16 * 2**20)"], "resources": {"limits": {"memory": "64Mi"}}}))
    pod = wait_for(lambda: finished(core, namespace, "fits"), 90, "pod fits to finish")
    assert (pod.status.phase, terminated(pod)) == ("Succeeded", {"reason": "Completed", "exitCode": 0})


def _claim_dir(core: client.CoreV1Api, namespace: str, name: str) -> pathlib.Path:
    claim = wait_for(lambda: (lambda c: c if c.status.phase == "Bound" else None)(
        core.read_namespaced_persistent_volume_claim(name, namespace)), 60, f"claim {name} Bound")
    return pathlib.Path(core.read_persistent_volume(claim.spec.volume_name).spec.host_path.path)


@pytest.mark.parametrize(("fs_group", "phase", "log"), [
    (2000, "Succeeded", "1000 1000 2000\nwritten\n"),
    (None, "Failed", "1000 1000\nsh: 1: cannot create /artifacts/index.bin: Permission denied\n"),
])
def test_fs_group_makes_a_claim_writable_for_a_non_root_user(api: client.ApiClient, namespace: str,
                                                             fs_group: int | None, phase: str, log: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_persistent_volume_claim(namespace, {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "artifacts"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    host_dir = _claim_dir(core, namespace, "artifacts")
    host_dir.mkdir(parents=True, exist_ok=True)
    host_dir.chmod(0o755)  # root's, as a freshly provisioned volume is
    security = {"runAsUser": 1000, "runAsGroup": 1000, "runAsNonRoot": True,
                **({"fsGroup": fs_group} if fs_group is not None else {})}
    core.create_namespaced_pod(namespace, pod_body("writer", {
        "command": ["sh", "-c", "echo $(id -u) $(id -G) && echo v1 > /artifacts/index.bin && echo written"],
        "volumeMounts": [{"name": "artifacts", "mountPath": "/artifacts"}],
    }, securityContext=security,
        volumes=[{"name": "artifacts", "persistentVolumeClaim": {"claimName": "artifacts"}}]))
    pod = wait_for(lambda: finished(core, namespace, "writer"), 90, "pod writer to finish")
    # stdout and stderr reach the log through two pipes: their lines may come in either order.
    lines = sorted(core.read_namespaced_pod_log("writer", namespace).splitlines())
    assert (pod.status.phase, lines) == (phase, sorted(log.splitlines()))
    if fs_group is not None:
        written = (host_dir / "index.bin").stat()
        assert (written.st_uid, written.st_gid, host_dir.stat().st_gid) == (1000, 2000, 2000)


def test_the_image_store_reads_the_project_storage() -> None:
    store = images.Store()
    image = store.get(IMAGE)
    assert (image.config.entrypoint, image.config.cmd, image.config.user) == (("faiss-operator",), ("run",), "65532:65532")
    with pytest.raises(images.ImageNotPresent, match='Container image "no-such-image:1" is not present '
                                                     "with pull policy of Never"):
        store.get("no-such-image:1")
