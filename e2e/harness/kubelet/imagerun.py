"""What a container run from its image gets from its pod: the argv by Kubernetes' rule, its volumes,
the pod's /etc/hosts and /etc/resolv.conf, the pod address for Python servers, and the check of
its securityContext before anything is created (e2e/harness/kubelet/ocispec.py)."""

from __future__ import annotations

import pathlib
import shutil
from typing import Any

from e2e.harness.kubelet import containers, envvars, images, ocispec, volumes

Obj = dict[str, Any]
SHIM_MOUNT = "/run/process-kubelet/shim"


def etc_files(pod_dir: pathlib.Path, pod_name: str, pod_ip: str) -> dict[str, pathlib.Path]:
    """/etc/hosts and /etc/resolv.conf of the pod's containers, as the kubelet writes them."""
    etc = pod_dir / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    hosts = etc / "hosts"
    hosts.write_text(f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{pod_ip}\t{pod_name}\n")
    resolv = etc / "resolv.conf"
    try:
        shutil.copyfile("/etc/resolv.conf", resolv)
    except OSError:
        resolv.write_text("")
    for f in (hosts, resolv):
        f.chmod(0o644)
    return {"/etc/hosts": hosts, "/etc/resolv.conf": resolv}


def prepare(*, pod: Obj, container: Obj, image: images.Image, store: images.Store, env: dict[str, str],
            volume_paths: dict[str, pathlib.Path], pod_dir: pathlib.Path, pod_ip: str,
            host_network: bool) -> ocispec.Run:
    """The run of `container`; raises ocispec.ConfigError for what the kubelet refuses."""
    argv = [envvars.expand(a, env) for a in ocispec.argv(container, image.config)]
    mounts = [ocispec.Mount(m["source"], m["target"], m["readOnly"]) for m in volumes.mounts(container, volume_paths)]
    files = etc_files(pod_dir, pod["metadata"]["name"], pod_ip)
    mounts += [ocispec.Mount(str(path), target, True) for target, path in files.items()]
    if not host_network:
        # Pods share the node's network namespace: the shim binds the wildcard to the pod's address.
        mounts.append(ocispec.Mount(str(containers.SHIM_DIR), SHIM_MOUNT, True))
        env = {**env, "PROCESS_KUBELET_POD_IP": pod_ip,
               "PYTHONPATH": ":".join(p for p in (SHIM_MOUNT, env.get("PYTHONPATH", "")) if p)}
    run = ocispec.Run(pod=pod, container=container, image=image.config, rootfs="",  # runc.start mounts the run's own root
                      mounts=tuple(mounts), env=tuple(env.items()), argv=tuple(argv), cgroups_path="",
                      image_user_ids=store.user_ids(image))
    ocispec.spec(run)  # refuses what the kubelet refuses before anything is created
    return run
