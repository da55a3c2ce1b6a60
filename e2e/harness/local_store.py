"""The S3 server of `make cluster-up`: versitygw beside the local cluster, for trying s3:// by hand.

The integration tier starts its own store per test module (objectstore.in_cluster); this one lives
as long as the cluster a user started from a shell. It serves `<state-dir>/objectstore/data`
inside the cluster's network namespace on the node address (pods reach it there, and so does the
host), with keys generated once per state directory and kept in `<state-dir>/objectstore.json`
with its process record, so `down` stops exactly the process `up` started and the next `up`
serves the same buckets with the same keys.
"""

from __future__ import annotations

import json
import pathlib

from e2e.harness import cluster as cluster_mod
from e2e.harness import objectstore, processes

STATE_FILE = "objectstore.json"
NAME = "versitygw"


def _state_path(state_dir: pathlib.Path) -> pathlib.Path:
    return state_dir / STATE_FILE


def _load(state_dir: pathlib.Path) -> dict[str, object]:
    try:
        raw = json.loads(_state_path(state_dir).read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return raw if isinstance(raw, dict) else {}


def _record(state: dict[str, object]) -> processes.Record | None:
    raw = state.get("process")
    return processes.Record.from_json(raw) if isinstance(raw, dict) else None


def start(cluster: cluster_mod.Cluster) -> objectstore.ObjectStore:
    """Start the store of `cluster` (already up), or return the one running; raises ObjectStoreError."""
    state = _load(cluster.state_dir)
    keys = state.get("credentials")
    credentials = (
        objectstore.Credentials(str(keys["access_key_id"]), str(keys["secret_access_key"]))
        if isinstance(keys, dict) else objectstore.Credentials.generate()
    )  # fmt: skip
    store = objectstore.in_cluster(cluster, root=cluster.state_dir / "objectstore", credentials=credentials)
    running = _record(state)
    if running is not None and processes.alive(running) and isinstance(state.get("port"), int):
        store.port = int(str(state["port"]))
        store.record = running
        return store
    store.start()
    assert store.record is not None
    _state_path(cluster.state_dir).write_text(json.dumps({
        "process": store.record.to_json(), "port": store.port, "endpoint": store.endpoint_url,
        "credentials": {"access_key_id": credentials.access_key_id, "secret_access_key": credentials.secret_access_key},
    }, indent=2))  # fmt: skip
    return store


def stop(state_dir: pathlib.Path) -> bool:
    """Stop the store `start` left running in `state_dir`; False when none was running."""
    state = _load(state_dir)
    running = _record(state)
    if running is None or not processes.alive(running):
        return False
    processes.stop(running, grace_seconds=5)
    return True


def status(state_dir: pathlib.Path) -> str | None:
    """`running (pid N) at URL`, `stopped`, or None when `up` never started one here."""
    state = _load(state_dir)
    running = _record(state)
    if running is None:
        return None
    return f"running (pid {running.pid}) at {state.get('endpoint')}" if processes.alive(running) else "stopped"


def instructions(store: objectstore.ObjectStore) -> str:
    """What a user needs to point a FaissIndex (and the aws CLI, boto3) at this store."""
    keys = store.credentials
    return "\n".join([
        f"# S3 server (versitygw, path-style, region {objectstore.REGION}) at {store.endpoint_url}",
        f"export AWS_ENDPOINT_URL_S3={store.endpoint_url} AWS_REGION={objectstore.REGION}",
        f"export AWS_ACCESS_KEY_ID={keys.access_key_id} AWS_SECRET_ACCESS_KEY={keys.secret_access_key}",
        "# its Secret for a FaissIndex (spec.objectStore.credentialsSecretRef: {name: faiss-s3}):",
        f"#   kubectl -n search create secret generic faiss-s3 --from-literal=AWS_ACCESS_KEY_ID={keys.access_key_id} "
        f"--from-literal=AWS_SECRET_ACCESS_KEY={keys.secret_access_key}",
        f"#   spec.objectStore: {{endpoint: {store.endpoint_url}, addressingStyle: path}}",
    ])  # fmt: skip
