"""The OCI runtime spec (runc's config.json) of one container run from an image, as a kubelet and
containerd would write it: a pure function of the pod, the container, the image's config and the
host paths the kubelet prepared, so that a unit test compares whole results.

What it enforces is what the kubelet enforces: the user (runAsUser, runAsGroup, the image's
USER), runAsNonRoot with the kubelet's own messages, fsGroup and supplementalGroups as
additional groups, readOnlyRootFilesystem, capabilities (containerd's default set, then add and
drop), allowPrivilegeEscalation (no_new_privs) and resources.limits (memory and CPU quota in the
container's cgroup) and seccompProfile `RuntimeDefault` (the profile in
seccomp_runtime_default.json, written for this project: the syscalls containerd's default profile
refuses to a container without extra capabilities - mount, unshare, setns, keyctl, bpf, module and
clock syscalls... - fail with EPERM, all others are allowed; containerd's is an allow-list, so it
is stricter: clone with namespace flags and the 32-bit personality calls are not filtered here).
`Localhost` profiles are refused (none is loaded on this node); AppArmor is not enforced.
The container shares the node's network namespace: pods on this node are told apart by their
address, not by a namespace of their own (see e2e/harness/addresses.py).
"""

from __future__ import annotations

import copy
import dataclasses
import decimal
import functools
import json
import math
import pathlib
from typing import Any

from kubernetes.utils import quantity

Obj = dict[str, Any]
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CPU_PERIOD_US = 100_000
# containerd's default capability set for a container (oci.DefaultCapabilities / CRI defaults).
DEFAULT_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)
ALL_CAPABILITIES = DEFAULT_CAPABILITIES + (
    "CAP_DAC_READ_SEARCH", "CAP_LINUX_IMMUTABLE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_IPC_LOCK",
    "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_LEASE",
    "CAP_AUDIT_CONTROL", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)
# runc's defaults (`runc spec`): what a container must not read or write of the host's /proc and /sys.
MASKED_PATHS = (
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
    "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")


SECCOMP_RUNTIME_DEFAULT = pathlib.Path(__file__).with_name("seccomp_runtime_default.json")


@functools.cache
def runtime_default_seccomp() -> Obj:
    """The `RuntimeDefault` profile in runc's config.json form (linux.seccomp)."""
    profile: Obj = json.loads(SECCOMP_RUNTIME_DEFAULT.read_text())
    return profile


def _quantity(value: str | int | float) -> decimal.Decimal:
    """A Kubernetes quantity ("256Mi", "1500m") as a number, by the client library's parser."""
    parsed: decimal.Decimal = quantity.parse_quantity(value)  # type: ignore[no-untyped-call]
    return parsed


class ConfigError(ValueError):
    """The container cannot be created as specified (reason CreateContainerConfigError)."""


@dataclasses.dataclass(frozen=True)
class ImageConfig:
    """The parts of an image's config a container run uses (OCI image config `config`)."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    user: str = ""
    working_dir: str = ""

    @classmethod
    def from_inspect(cls, config: Obj) -> ImageConfig:
        """From `podman image inspect`'s `.Config`."""
        return cls(entrypoint=tuple(config.get("Entrypoint") or ()), cmd=tuple(config.get("Cmd") or ()),
                   env=tuple(config.get("Env") or ()), user=str(config.get("User") or ""),
                   working_dir=str(config.get("WorkingDir") or ""))


@dataclasses.dataclass(frozen=True)
class Mount:
    source: str
    target: str
    read_only: bool = False


@dataclasses.dataclass(frozen=True)
class Run:
    """One run of a container: the pod and container objects and what the kubelet prepared."""

    pod: Obj
    container: Obj
    image: ImageConfig
    rootfs: str
    mounts: tuple[Mount, ...]  # volumes, the termination-message file, /etc/hosts, /etc/resolv.conf
    env: tuple[tuple[str, str], ...]  # the container's resolved env, kubelet variables included
    argv: tuple[str, ...]
    cgroups_path: str
    # The image user's uid and gid when USER names a user of the image's /etc/passwd; None when
    # USER is numeric or empty.
    image_user_ids: tuple[int, int] | None = None


def pod_desc(pod: Obj) -> str:
    """The kubelet's format.Pod: name_namespace(uid)."""
    meta = pod["metadata"]
    return f"{meta['name']}_{meta['namespace']}({meta.get('uid', '')})"


def effective_security_context(pod: Obj, container: Obj) -> Obj:
    """The container's securityContext over the pod's (securitycontext.DetermineEffectiveSecurityContext)."""
    pod_sc = pod["spec"].get("securityContext") or {}
    merged = {k: pod_sc[k] for k in ("runAsUser", "runAsGroup", "runAsNonRoot", "seLinuxOptions",
                                     "seccompProfile", "windowsOptions") if k in pod_sc}
    merged.update(container.get("securityContext") or {})
    return merged


def _image_ids(run: Run) -> tuple[int | None, int | None, str]:
    """(uid, gid, name) of the image's USER; uid None for a name the image's passwd lacks."""
    user, _, group = run.image.user.partition(":")
    if not user:
        return 0, 0, ""
    gid = int(group) if group.isdigit() else None
    if user.isdigit():
        return int(user), gid if gid is not None else 0, ""
    if run.image_user_ids is not None:
        uid, passwd_gid = run.image_user_ids
        return uid, gid if gid is not None else passwd_gid, user
    return None, gid, user


def user(run: Run) -> Obj:
    """The process user; refuses a root user under runAsNonRoot with the kubelet's messages."""
    sc = effective_security_context(run.pod, run.container)
    image_uid, image_gid, name = _image_ids(run)
    where = f"(pod: \"{pod_desc(run.pod)}\", container: {run.container['name']})"
    if sc.get("runAsNonRoot"):
        if sc.get("runAsUser") is not None:
            if int(sc["runAsUser"]) == 0:
                raise ConfigError(f"container's runAsUser breaks non-root policy {where}")
        elif name:  # the kubelet never resolves a name, even one the image's passwd holds
            raise ConfigError(f"container has runAsNonRoot and image has non-numeric user ({name}), "
                              f"cannot verify user is non-root {where}")
        elif image_uid == 0:
            raise ConfigError(f"container has runAsNonRoot and image will run as root {where}")
    if sc.get("runAsUser") is None and image_uid is None:
        raise ConfigError(f"image user {name!r} is not in the image's /etc/passwd")
    uid = int(sc["runAsUser"]) if sc.get("runAsUser") is not None else image_uid
    gid = int(sc["runAsGroup"]) if sc.get("runAsGroup") is not None else (image_gid or 0)
    pod_sc = run.pod["spec"].get("securityContext") or {}
    extra = [int(g) for g in pod_sc.get("supplementalGroups") or []]
    if pod_sc.get("fsGroup") is not None:
        extra.insert(0, int(pod_sc["fsGroup"]))
    out: Obj = {"uid": uid, "gid": gid}
    groups = list(dict.fromkeys(g for g in extra if g != gid))
    if groups:
        out["additionalGids"] = groups
    return out


def capabilities(container: Obj) -> list[str]:
    """containerd's defaults, then securityContext.capabilities add, then drop ("ALL" allowed)."""
    caps = (container.get("securityContext") or {}).get("capabilities") or {}
    add = [c.upper() for c in caps.get("add") or []]
    drop = [c.upper() for c in caps.get("drop") or []]
    out = list(DEFAULT_CAPABILITIES)
    if "ALL" in add:
        out = list(ALL_CAPABILITIES)
    else:
        out += [f"CAP_{c}" for c in add if f"CAP_{c}" not in out]
    if "ALL" in drop:
        return [f"CAP_{c}" for c in add if c != "ALL"] if "ALL" not in add else []
    return [c for c in out if c.removeprefix("CAP_") not in drop]


def resources(container: Obj) -> Obj:
    """Memory limit, CPU quota and shares of the container's cgroup (the kubelet's conversions)."""
    res = container.get("resources") or {}
    limits, requests = res.get("limits") or {}, res.get("requests") or {}
    out: Obj = {}
    if "memory" in limits:
        memory = int(_quantity(limits["memory"]))
        out["memory"] = {"limit": memory, "swap": memory}
    cpu: Obj = {}
    request = requests.get("cpu", limits.get("cpu"))
    if request is not None:
        milli = math.ceil(_quantity(request) * 1000)
        cpu["shares"] = max(2, milli * 1024 // 1000)
    if "cpu" in limits:
        milli = math.ceil(_quantity(limits["cpu"]) * 1000)
        cpu["quota"] = max(1000, milli * CPU_PERIOD_US // 1000)
        cpu["period"] = CPU_PERIOD_US
    if cpu:
        out["cpu"] = cpu
    return out


def seccomp(sc: Obj) -> Obj | None:
    """linux.seccomp for the effective seccompProfile: RuntimeDefault's profile, None when
    Unconfined or unset (the kubelet's default without --seccomp-default)."""
    kind = (sc.get("seccompProfile") or {}).get("type") or "Unconfined"
    if kind == "Unconfined":
        return None
    if kind == "RuntimeDefault":
        return copy.deepcopy(runtime_default_seccomp())
    raise ConfigError(f"seccomp profile type {kind!r} is not supported on this node "
                      "(it loads RuntimeDefault only; no Localhost profile is installed)")


def _mounts(run: Run) -> list[Obj]:
    base: list[Obj] = [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        # The node's network namespace is shared, so sysfs cannot be mounted anew: the host's, read-only.
        {"destination": "/sys", "type": "bind", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]},
    ]
    # Deeper mount points after their parents, so a volume inside a volume lands on top.
    for m in sorted(run.mounts, key=lambda m: m.target.rstrip("/").count("/")):
        base.append({"destination": m.target, "type": "bind", "source": m.source,
                     "options": ["rbind", "rprivate", "ro" if m.read_only else "rw"]})
    return base


def _env(run: Run) -> list[str]:
    merged: dict[str, str] = {"PATH": DEFAULT_PATH}
    for item in run.image.env:
        name, _, value = item.partition("=")
        merged[name] = value
    merged.update(dict(run.env))
    return [f"{k}={v}" for k, v in merged.items()]


def spec(run: Run) -> Obj:
    """The whole config.json of the run."""
    sc = effective_security_context(run.pod, run.container)
    caps = capabilities(run.container)
    privileged = bool(sc.get("privileged"))
    no_new_privileges = sc.get("allowPrivilegeEscalation") is False
    profile = seccomp(sc)
    linux: Obj = {
        "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
        "cgroupsPath": run.cgroups_path,
        "resources": {"devices": [{"allow": False, "access": "rwm"}], **resources(run.container)},
        "maskedPaths": list(MASKED_PATHS),
        "readonlyPaths": list(READONLY_PATHS),
    }
    if profile is not None:
        linux["seccomp"] = profile
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": user(run),
            "args": list(run.argv),
            "env": _env(run),
            "cwd": run.container.get("workingDir") or run.image.working_dir or "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": no_new_privileges and not privileged,
        },
        "root": {"path": run.rootfs, "readonly": bool(sc.get("readOnlyRootFilesystem"))},
        "hostname": run.pod["metadata"]["name"],
        "mounts": _mounts(run),
        "linux": linux,
    }


def argv(container: Obj, image: ImageConfig) -> list[str]:
    """Kubernetes' rule: command replaces ENTRYPOINT (and drops CMD), args replace CMD."""
    command = list(container.get("command") or [])
    args = list(container.get("args") or [])
    if command:
        return command + args
    out = list(image.entrypoint) + (args or list(image.cmd))
    if not out:
        raise ConfigError("no command specified")
    return out
