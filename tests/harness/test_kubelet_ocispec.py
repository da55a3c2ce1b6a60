"""The OCI runtime spec the kubelet's runc path writes for a container run from an image:
whole expected results for a restricted pod, and the kubelet's refusals word for word."""

from __future__ import annotations

import copy
import json
import pathlib
from typing import Any

import pytest

from e2e.harness.kubelet import ocispec

# The project's RuntimeDefault seccomp profile, read as the data file it is.
RUNTIME_DEFAULT = json.loads((pathlib.Path(ocispec.__file__).parent / "seccomp_runtime_default.json").read_text())
IMAGE = ocispec.ImageConfig(entrypoint=("faiss-operator",), cmd=("run",),
                            env=("PATH=/opt/faiss-operator/bin:/usr/bin:/bin", "PYTHONUNBUFFERED=1"),
                            user="65532:65532", working_dir="/tmp")
RESTRICTED_CONTAINER: dict[str, Any] = {
    "name": "serve", "image": "faiss-operator:dev", "args": ["serve", "--port", "8080"],
    "securityContext": {"runAsNonRoot": True, "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
    "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"cpu": "1500m", "memory": "256Mi"}},
}
POD: dict[str, Any] = {
    "metadata": {"name": "alerts-5d41c2-abc", "namespace": "search", "uid": "0f1e"},
    "spec": {"securityContext": {"runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000, "supplementalGroups": [4000]},
             "containers": [RESTRICTED_CONTAINER]},
}


def run_of(pod: dict[str, Any], container: dict[str, Any], image: ocispec.ImageConfig = IMAGE,
           **changes: Any) -> ocispec.Run:
    base = ocispec.Run(pod=pod, container=container, image=image, rootfs="/bundle/rootfs",
                       mounts=(ocispec.Mount("/pods/x/volumes/artifacts", "/artifacts", True),
                               ocispec.Mount("/pods/x/volumes/tmp", "/tmp"),
                               ocispec.Mount("/pods/x/volumes/cache", "/tmp/cache")),
                       env=(("PATH", "/opt/faiss-operator/bin:/usr/bin"), ("FAISS_PORT", "8080")),
                       argv=tuple(ocispec.argv(container, image)), cgroups_path="/faiss-kubelet/0f1e-serve")
    return ocispec.Run(**{**base.__dict__, **changes})


def test_a_restricted_container_gets_the_whole_spec_a_kubelet_and_containerd_would_write() -> None:
    assert ocispec.spec(run_of(POD, RESTRICTED_CONTAINER)) == {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 1000, "gid": 3000, "additionalGids": [2000, 4000]},
            "args": ["faiss-operator", "serve", "--port", "8080"],
            "env": ["PATH=/opt/faiss-operator/bin:/usr/bin", "PYTHONUNBUFFERED=1", "FAISS_PORT=8080"],
            "cwd": "/tmp",
            "capabilities": {"bounding": [], "effective": [], "permitted": []},
            "noNewPrivileges": True,
        },
        "root": {"path": "/bundle/rootfs", "readonly": True},
        "hostname": "alerts-5d41c2-abc",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "bind", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/artifacts", "type": "bind", "source": "/pods/x/volumes/artifacts",
             "options": ["rbind", "rprivate", "ro"]},
            {"destination": "/tmp", "type": "bind", "source": "/pods/x/volumes/tmp", "options": ["rbind", "rprivate", "rw"]},
            {"destination": "/tmp/cache", "type": "bind", "source": "/pods/x/volumes/cache",
             "options": ["rbind", "rprivate", "rw"]},
        ],
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "cgroupsPath": "/faiss-kubelet/0f1e-serve",
            "resources": {
                "devices": [{"allow": False, "access": "rwm"}],
                "memory": {"limit": 268435456, "swap": 268435456},
                "cpu": {"shares": 256, "quota": 150000, "period": 100000},
            },
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                            "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
            "seccomp": RUNTIME_DEFAULT,
        },
    }


def test_a_container_with_no_security_context_runs_as_the_image_user_with_containerds_capabilities() -> None:
    container = {"name": "build", "image": "faiss-operator:dev", "command": ["faiss-operator", "build"]}
    pod = {"metadata": {"name": "b", "namespace": "n", "uid": "u"}, "spec": {"containers": [container]}}
    spec = ocispec.spec(run_of(pod, container))
    assert spec["process"]["user"] == {"uid": 65532, "gid": 65532}
    assert spec["process"]["args"] == ["faiss-operator", "build"]
    assert spec["process"]["noNewPrivileges"] is False
    assert spec["process"]["capabilities"]["bounding"] == list(ocispec.DEFAULT_CAPABILITIES)
    assert spec["root"]["readonly"] is False
    assert spec["linux"]["resources"] == {"devices": [{"allow": False, "access": "rwm"}]}


@pytest.mark.parametrize(("capabilities", "expected"), [
    ({"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}, ["CAP_NET_BIND_SERVICE"]),
    ({"drop": ["NET_RAW", "chown"]}, [c for c in ocispec.DEFAULT_CAPABILITIES if c not in ("CAP_NET_RAW", "CAP_CHOWN")]),
    ({"add": ["SYS_PTRACE"]}, [*ocispec.DEFAULT_CAPABILITIES, "CAP_SYS_PTRACE"]),
    ({"add": ["ALL"]}, list(ocispec.ALL_CAPABILITIES)),
])
def test_capabilities_are_containerds_defaults_then_add_then_drop(capabilities: dict[str, list[str]],
                                                                  expected: list[str]) -> None:
    assert ocispec.capabilities({"securityContext": {"capabilities": capabilities}}) == expected


def _with(sc_pod: dict[str, Any] | None, sc_container: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    container = {"name": "c", "image": "x", "command": ["true"], **({"securityContext": sc_container} if sc_container else {})}
    pod = copy.deepcopy(POD)
    pod["spec"] = {"containers": [container], **({"securityContext": sc_pod} if sc_pod else {})}
    return pod, container


@pytest.mark.parametrize(("image_user", "sc_pod", "sc_container", "message"), [
    ("", {"runAsNonRoot": True}, None,
     'container has runAsNonRoot and image will run as root (pod: "alerts-5d41c2-abc_search(0f1e)", container: c)'),
    ("0:0", None, {"runAsNonRoot": True},
     'container has runAsNonRoot and image will run as root (pod: "alerts-5d41c2-abc_search(0f1e)", container: c)'),
    ("65532", {"runAsNonRoot": True}, {"runAsUser": 0},
     "container's runAsUser breaks non-root policy (pod: \"alerts-5d41c2-abc_search(0f1e)\", container: c)"),
    ("nobody", {"runAsNonRoot": True}, None,
     "container has runAsNonRoot and image has non-numeric user (nobody), cannot verify user is non-root "
     '(pod: "alerts-5d41c2-abc_search(0f1e)", container: c)'),
])
def test_run_as_non_root_refuses_a_root_user_with_the_kubelets_message(
        image_user: str, sc_pod: dict[str, Any] | None, sc_container: dict[str, Any] | None, message: str) -> None:
    pod, container = _with(sc_pod, sc_container)
    image = ocispec.ImageConfig(user=image_user)
    with pytest.raises(ocispec.ConfigError) as caught:
        ocispec.spec(run_of(pod, container, image, image_user_ids=(65534, 65534)))
    assert str(caught.value) == message


def test_run_as_non_root_accepts_a_non_root_image_user_and_the_container_overrides_the_pod() -> None:
    pod, container = _with({"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000}, {"runAsUser": 2000})
    assert ocispec.user(run_of(pod, container)) == {"uid": 2000, "gid": 1000}
    pod, container = _with({"runAsNonRoot": True}, None)
    assert ocispec.user(run_of(pod, container)) == {"uid": 65532, "gid": 65532}


def test_a_named_image_user_takes_its_ids_from_the_images_passwd() -> None:
    pod, container = _with(None, None)
    image = ocispec.ImageConfig(user="faiss")
    assert ocispec.user(run_of(pod, container, image, image_user_ids=(65532, 65533))) == {"uid": 65532, "gid": 65533}
    with pytest.raises(ocispec.ConfigError, match="image user 'faiss' is not in the image's /etc/passwd"):
        ocispec.user(run_of(pod, container, image))


@pytest.mark.parametrize(("container", "expected"), [
    ({}, ["faiss-operator", "run"]),
    ({"args": ["serve"]}, ["faiss-operator", "serve"]),
    ({"command": ["python", "-c", "pass"]}, ["python", "-c", "pass"]),
    ({"command": ["sh"], "args": ["-c", "true"]}, ["sh", "-c", "true"]),
])
def test_command_replaces_the_entrypoint_and_args_replace_cmd(container: dict[str, Any], expected: list[str]) -> None:
    assert ocispec.argv(container, IMAGE) == expected


def test_an_image_with_no_entrypoint_and_a_container_with_no_command_is_refused() -> None:
    with pytest.raises(ocispec.ConfigError, match="no command specified"):
        ocispec.argv({}, ocispec.ImageConfig())


@pytest.mark.parametrize(("resources", "expected"), [
    ({"limits": {"memory": "1Gi"}}, {"memory": {"limit": 1073741824, "swap": 1073741824}}),
    ({"limits": {"cpu": "2"}}, {"cpu": {"shares": 2048, "quota": 200000, "period": 100000}}),
    ({"requests": {"cpu": "1m"}}, {"cpu": {"shares": 2}}),
    ({"limits": {"cpu": "1m"}}, {"cpu": {"shares": 2, "quota": 1000, "period": 100000}}),
    ({"requests": {"memory": "1Gi"}}, {}),
])
def test_limits_become_the_cgroups_memory_limit_and_cpu_quota(resources: dict[str, Any], expected: dict[str, Any]) -> None:
    assert ocispec.resources({"resources": resources}) == expected


def test_runtime_default_refuses_the_syscalls_containerd_refuses_with_eperm_and_allows_the_rest() -> None:
    assert RUNTIME_DEFAULT["defaultAction"] == "SCMP_ACT_ALLOW"
    [rule] = RUNTIME_DEFAULT["syscalls"]
    assert (rule["action"], rule["errnoRet"]) == ("SCMP_ACT_ERRNO", 1)
    assert {"mount", "umount2", "unshare", "setns", "keyctl", "add_key", "request_key", "bpf", "init_module",
            "finit_module", "delete_module", "kexec_load", "reboot", "swapon", "clock_settime",
            "perf_event_open", "open_by_handle_at", "userfaultfd"} <= set(rule["names"])
    # What FAISS, numpy and Python's runtime use stays allowed (and ptrace, as containerd allows it on kernels >= 4.8).
    assert not {"mmap", "madvise", "clone", "clone3", "futex", "sched_getaffinity", "get_mempolicy",
                "ptrace"} & set(rule["names"])


@pytest.mark.parametrize(("pod_profile", "container_profile", "expected"), [
    ({"type": "RuntimeDefault"}, None, True),
    (None, {"type": "RuntimeDefault"}, True),
    ({"type": "RuntimeDefault"}, {"type": "Unconfined"}, False),  # the container's wins
    (None, None, False),  # the kubelet's default without --seccomp-default: Unconfined
])
def test_seccomp_runtime_default_is_applied_where_the_effective_profile_asks_for_it(
        pod_profile: dict[str, str] | None, container_profile: dict[str, str] | None, expected: bool) -> None:
    pod = copy.deepcopy(POD)
    container: dict[str, Any] = {"name": "c", "image": "faiss-operator:dev", "command": ["true"]}
    if pod_profile:
        pod["spec"]["securityContext"]["seccompProfile"] = pod_profile
    if container_profile:
        container["securityContext"] = {"seccompProfile": container_profile}
    linux = ocispec.spec(run_of(pod, container))["linux"]
    assert linux.get("seccomp") == (RUNTIME_DEFAULT if expected else None)


def test_a_localhost_seccomp_profile_is_refused_with_the_reason() -> None:
    container = {"name": "c", "image": "faiss-operator:dev", "command": ["true"],
                 "securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "my.json"}}}
    with pytest.raises(ocispec.ConfigError, match=r"^seccomp profile type 'Localhost' is not supported on this node "
                                                  r"\(it loads RuntimeDefault only; no Localhost profile is installed\)$"):
        ocispec.spec(run_of(POD, container))
