"""Where the kubelet keeps each pod's files, logs and process records under its state directory.

The cluster (and tests) read logs and process records from here, so the layout lives in one place.
"""

from __future__ import annotations

import json
import pathlib

from e2e.harness import processes


def pod_key(namespace: str, name: str, uid: str) -> str:
    return f"{namespace}_{name}_{uid}"


def pod_dir(state_dir: pathlib.Path, key: str) -> pathlib.Path:
    """Volumes and container root overlays; removed when the pod is gone."""
    return state_dir / "pods" / key


def container_dir(pod_dir: pathlib.Path, container: str) -> pathlib.Path:
    """A container's run files: termination message, the process root or the runc bundle."""
    return pod_dir / "containers" / container


def bundle_dir(pod_dir: pathlib.Path, container: str) -> pathlib.Path:
    """The OCI bundle of a container run from its image (config.json, rootfs)."""
    return container_dir(pod_dir, container) / "bundle"


def log_dir(state_dir: pathlib.Path, key: str, container: str) -> pathlib.Path:
    """Container logs, one file per run (`<restartCount>.log`); kept after the pod is gone."""
    return state_dir / "logs" / key / container


def pids_dir(state_dir: pathlib.Path) -> pathlib.Path:
    return state_dir / "pids"


def write_pid_record(state_dir: pathlib.Path, record: processes.Record) -> pathlib.Path:
    path = pids_dir(state_dir) / f"{record.pid}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record.to_json()))
    return path


def pod_process_records(state_dir: pathlib.Path) -> list[processes.Record]:
    """Containers the kubelet started and has not seen exit."""
    directory = pids_dir(state_dir)
    if not directory.is_dir():
        return []
    return [processes.Record.from_json(json.loads(p.read_text())) for p in directory.glob("*.json")]


def log_files(state_dir: pathlib.Path, namespace: str, pod: str, container: str) -> list[pathlib.Path]:
    """All runs' logs of a container of the newest pod with that name, oldest run first."""
    candidates = sorted((state_dir / "logs").glob(f"{namespace}_{pod}_*/{container}"),
                        key=lambda p: p.stat().st_mtime)
    if not candidates:
        return []
    return sorted(candidates[-1].glob("*.log"), key=lambda p: int(p.stem))


def read_log(state_dir: pathlib.Path, namespace: str, pod: str, container: str, *, previous: bool = False) -> str:
    files = log_files(state_dir, namespace, pod, container)
    if previous:
        files = files[:-1]
    if not files:
        raise FileNotFoundError(f"no log for container {container} of pod {namespace}/{pod}")
    return files[-1].read_text(errors="replace")
