"""The embeddings into the claim, by the loader Job of examples/storage as a user runs it.

The Job downloads `EMBEDDINGS_URL`; here that is this machine's cache, served over HTTP on the
host's end of the veth pair to the cluster's network namespace (e2e/harness/addresses.py), which
the pods reach through their node. On a real cluster the URL is wherever the embeddings are
published.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import pathlib
import threading
from collections.abc import Iterator
from typing import Any

import yaml
from kubernetes import client

from e2e.harness import paths
from e2e.harness.kubectl import Kubectl
from e2e.harness.waiting import wait_for

EXAMPLES = paths.REPO_ROOT / "examples" / "storage"
JOB_NAME = "embeddings-loader"


@contextlib.contextmanager
def serve_directory(directory: pathlib.Path, address: str) -> Iterator[str]:
    """An HTTP server of `directory` on `address` (a free port) while the block runs; its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer((address, 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="embeddings-http", daemon=True)
    thread.start()
    try:
        yield f"http://{address}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


def example(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text())
    return document


def claim(namespace: str) -> dict[str, Any]:
    """examples/storage/embeddings-pvc.yaml in `namespace`, ReadWriteOnce (the local cluster has one node)."""
    pvc = example("embeddings-pvc.yaml")
    pvc["metadata"]["namespace"] = namespace
    pvc["spec"]["accessModes"] = ["ReadWriteOnce"]
    return pvc


def job(namespace: str, url: str, dimension: int) -> dict[str, Any]:
    """examples/storage/embeddings-loader-job.yaml with EMBEDDINGS_URL, DIMENSION and the namespace set."""
    manifest = example("embeddings-loader-job.yaml")
    manifest["metadata"]["namespace"] = namespace
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    values = {"EMBEDDINGS_URL": url, "DIMENSION": str(dimension)}
    container["env"] = [{**e, "value": values.get(e["name"], e.get("value"))} for e in container["env"]]
    return manifest


def target_uri() -> str:
    """The pvc:// URI of the file the loader Job writes (its TARGET under the claim's mountPath)."""
    container = example("embeddings-loader-job.yaml")["spec"]["template"]["spec"]["containers"][0]
    target = next(e["value"] for e in container["env"] if e["name"] == "TARGET")
    return "pvc://" + target.removeprefix("/mnt/pvc/")


def load(api: client.ApiClient, kubectl: Kubectl, namespace: str, vectors: pathlib.Path, dimension: int,
         *, serve_on: str, timeout: float = 300.0) -> str:
    """Run the loader Job for `vectors`, served over HTTP on address `serve_on`; its log line ("Loaded N vectors ..."). AssertionError with
    the Job's log when it fails or does not finish in `timeout` seconds."""
    kubectl.apply(claim(namespace))
    batch = client.BatchV1Api(api)
    with serve_directory(vectors.parent, serve_on) as base:
        kubectl.run("delete", "job", JOB_NAME, "-n", namespace, "--ignore-not-found", "--wait=true")
        kubectl.apply(job(namespace, f"{base}/{vectors.name}", dimension))

        def finished() -> bool:
            conditions = {c.type: c.status for c in batch.read_namespaced_job(JOB_NAME, namespace).status.conditions or []}
            if conditions.get("Failed") == "True":
                raise AssertionError(f"Job {namespace}/{JOB_NAME} failed:\n{_log(kubectl, namespace)}")
            return conditions.get("Complete") == "True"
        wait_for(finished, timeout, f"Job {namespace}/{JOB_NAME} Complete", interval=1.0)
    return _log(kubectl, namespace)


def _log(kubectl: Kubectl, namespace: str) -> str:
    return kubectl.run("logs", f"job/{JOB_NAME}", "-n", namespace, "--tail=20", check=False).stdout.strip()
