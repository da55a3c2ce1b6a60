"""Make each pod volume a host directory, so it can be bind-mounted into the containers.

emptyDir, configMap, secret, downwardAPI and projected volumes are written into the pod's
directory; hostPath and persistentVolumeClaim (through its bound PersistentVolume's hostPath)
point at the host directory itself. A volume that cannot be made yet (a claim not bound, a
missing configMap) raises VolumeNotReady and the pod stays in ContainerCreating, as with the
real kubelet.
"""

from __future__ import annotations

import base64
import os
import pathlib
import shutil
from collections.abc import Callable
from typing import Any

from e2e.harness.kubelet import envvars

Obj = dict[str, Any]
# (kind, namespace, name) -> object or None; kinds: configmap, secret, pvc, pv
Getter = Callable[[str, str, str], Obj | None]
TokenIssuer = Callable[[Obj, Obj], str]  # (pod, serviceAccountToken source) -> token


class VolumeNotReady(RuntimeError):
    """The volume cannot be set up yet; the message is the kubelet event text."""


def _write_files(directory: pathlib.Path, files: dict[str, bytes], mode: int) -> None:
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    for rel, content in files.items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(mode)


def _keyed(data: dict[str, bytes], items: list[Obj] | None, what: str, optional: bool) -> dict[str, bytes]:
    if not items:
        return data
    out = {}
    for item in items:
        if item["key"] not in data:
            if optional:
                continue
            raise VolumeNotReady(f"key {item['key']!r} not found in {what}")
        out[item["path"]] = data[item["key"]]
    return out


def _configmap_files(get: Getter, ns: str, src: Obj) -> dict[str, bytes]:
    obj = get("configmap", ns, src["name"])
    if obj is None:
        if src.get("optional"):
            return {}
        raise VolumeNotReady(f'configmap "{src["name"]}" not found')
    data = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
    data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    return _keyed(data, src.get("items"), f"configmap {src['name']!r}", bool(src.get("optional")))


def _secret_files(get: Getter, ns: str, src: Obj) -> dict[str, bytes]:
    name = src.get("secretName") or src.get("name")
    obj = get("secret", ns, str(name))
    if obj is None:
        if src.get("optional"):
            return {}
        raise VolumeNotReady(f'secret "{name}" not found')
    data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    return _keyed(data, src.get("items"), f"secret {name!r}", bool(src.get("optional")))


def _downward_files(pod: Obj, src: Obj) -> dict[str, bytes]:
    out = {}
    for item in src.get("items") or []:
        if "fieldRef" in item:
            value = envvars.field_value(pod, item["fieldRef"]["fieldPath"])
        else:
            container = next(c for c in pod["spec"]["containers"]
                             if c["name"] == item["resourceFieldRef"].get("containerName", c["name"]))
            value = envvars.resource_value(container, item["resourceFieldRef"])
        out[item["path"]] = value.encode()
    return out


def _claim_path(get: Getter, ns: str, claim_name: str) -> pathlib.Path:
    claim = get("pvc", ns, claim_name)
    if claim is None:
        raise VolumeNotReady(f'persistentvolumeclaim "{claim_name}" not found')
    pv_name = (claim.get("spec") or {}).get("volumeName")
    if (claim.get("status") or {}).get("phase") != "Bound" or not pv_name:
        raise VolumeNotReady(f'persistentvolumeclaim "{claim_name}" is not bound')
    pv = get("pv", "", pv_name)
    host_path = ((pv or {}).get("spec") or {}).get("hostPath")
    if not host_path:
        raise VolumeNotReady(f"persistentvolume {pv_name!r} has no hostPath; this node mounts only hostPath volumes")
    path = pathlib.Path(host_path["path"])
    path.mkdir(parents=True, exist_ok=True)
    return path


def _host_path(src: Obj) -> pathlib.Path:
    path = pathlib.Path(src["path"])
    kind = src.get("type") or ""
    if kind == "DirectoryOrCreate":
        path.mkdir(parents=True, exist_ok=True)
    elif kind == "FileOrCreate" and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    elif kind in ("Directory", "File") and not path.exists():
        raise VolumeNotReady(f"hostPath {path} does not exist")
    return path


def prepare(pod: Obj, pod_dir: pathlib.Path, get: Getter, issue_token: TokenIssuer) -> dict[str, pathlib.Path]:
    """Host directory of each volume of the pod, by volume name."""
    ns = pod["metadata"]["namespace"]
    result: dict[str, pathlib.Path] = {}
    for volume in pod["spec"].get("volumes") or []:
        name = volume["name"]
        local = pod_dir / "volumes" / name
        mode = 0o644
        if "emptyDir" in volume:
            local.mkdir(parents=True, exist_ok=True)
            local.chmod(0o777)
            result[name] = local
        elif "hostPath" in volume:
            result[name] = _host_path(volume["hostPath"])
        elif "persistentVolumeClaim" in volume:
            result[name] = _claim_path(get, ns, volume["persistentVolumeClaim"]["claimName"])
        elif "configMap" in volume:
            src = volume["configMap"]
            _write_files(local, _configmap_files(get, ns, src), src.get("defaultMode", mode))
            result[name] = local
        elif "secret" in volume:
            src = volume["secret"]
            _write_files(local, _secret_files(get, ns, src), src.get("defaultMode", mode))
            result[name] = local
        elif "downwardAPI" in volume:
            src = volume["downwardAPI"]
            _write_files(local, _downward_files(pod, src), src.get("defaultMode", mode))
            result[name] = local
        elif "projected" in volume:
            files: dict[str, bytes] = {}
            for source in volume["projected"].get("sources") or []:
                if "configMap" in source:
                    files.update(_configmap_files(get, ns, source["configMap"]))
                elif "secret" in source:
                    files.update(_secret_files(get, ns, source["secret"]))
                elif "downwardAPI" in source:
                    files.update(_downward_files(pod, source["downwardAPI"]))
                elif "serviceAccountToken" in source:
                    sat = source["serviceAccountToken"]
                    files[sat["path"]] = issue_token(pod, sat).encode()
                else:
                    raise VolumeNotReady(f"projected source {sorted(source)} is not supported by this node")
            _write_files(local, files, volume["projected"].get("defaultMode", mode))
            result[name] = local
        else:
            kinds = sorted(k for k in volume if k != "name")
            raise VolumeNotReady(f"volume {name!r} of type {kinds} is not supported by this node")
    return result


def mounts(container: Obj, volumes: dict[str, pathlib.Path]) -> list[Obj]:
    """The container's volumeMounts as bind mounts for nsinit."""
    out = []
    for vm in container.get("volumeMounts") or []:
        source = volumes.get(vm["name"])
        if source is None:
            raise VolumeNotReady(f"volumeMount {vm['name']!r} names no volume of the pod")
        if vm.get("subPath"):
            source = source / vm["subPath"]
            if not source.exists():
                source.mkdir(parents=True)
        out.append({"source": os.fspath(source), "target": vm["mountPath"], "readOnly": bool(vm.get("readOnly"))})
    return out


def keep_visible(mounts: list[Obj], host_paths: list[pathlib.Path]) -> list[Obj]:
    """Read-only bind mounts that put each of `host_paths` back at its own path when one of the
    container's volumes is mounted over a directory that holds it.

    No image is pulled here: containers run the repository's .venv and its editable package from
    the host's filesystem. A pod that mounts an emptyDir at /tmp (the chart's operator, with a
    read-only root filesystem) would otherwise hide a checkout under /tmp, and its `faiss-operator`
    would not be found."""
    extra = []
    for path in dict.fromkeys(os.fspath(p) for p in host_paths):
        shadowed = any(path == m["target"].rstrip("/") or path.startswith(m["target"].rstrip("/") + "/")
                       for m in mounts)
        if shadowed:
            extra.append({"source": path, "target": path, "readOnly": True})
    return extra


# Volume kinds whose ownership the kubelet manages under fsGroup (hostPath is left as it is).
OWNED_KINDS = ("emptyDir", "configMap", "secret", "downwardAPI", "projected", "persistentVolumeClaim")
_READ_ONLY_KINDS = ("configMap", "secret", "downwardAPI", "projected")


def apply_fs_group(pod: Obj, paths: dict[str, pathlib.Path]) -> None:
    """The kubelet's volume ownership (SetVolumeOwnership) for the pod's fsGroup: every file and
    directory of the owned volumes gets the group; directories get g+rwx and setgid, so that what
    the containers create there keeps the group; files get g+rw (g+r in read-only kinds)."""
    fs_group = (pod["spec"].get("securityContext") or {}).get("fsGroup")
    if fs_group is None:
        return
    gid = int(fs_group)
    for volume in pod["spec"].get("volumes") or []:
        kind = next((k for k in OWNED_KINDS if k in volume), None)
        root = paths.get(volume["name"])
        if kind is None or root is None:
            continue
        file_bits = 0o040 if kind in _READ_ONLY_KINDS else 0o060
        for directory, _, files in os.walk(root):
            os.chown(directory, -1, gid)
            os.chmod(directory, os.stat(directory).st_mode & 0o7777 | 0o2070)
            for name in files:
                path = os.path.join(directory, name)
                if os.path.islink(path):
                    continue
                os.chown(path, -1, gid)
                mode = os.stat(path).st_mode & 0o7777
                os.chmod(path, mode | file_bits | (0o010 if mode & 0o100 else 0))
