"""Vectors for a story: written into a claim by a Job in the cluster, and the same ones here for
exact search."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import numpy as np
from kubernetes import client

from e2e.harness.waiting import wait_for

Vectors = np.ndarray[Any, np.dtype[np.float32]]
COUNT, DIMENSION, SEED = 2000, 16, 7
# The image of the Job writing vectors: it needs Python with numpy, which the project's image has
# (`make image`; the process kubelet runs it under runc, or from the repository's virtualenv
# under RuntimeClass `process`). E2E_WRITER_IMAGE names another one.
WRITER_IMAGE = os.environ.get("E2E_WRITER_IMAGE", "faiss-operator:dev")
# Pod Security `restricted` (the story namespaces enforce it), as the image's user (Dockerfile).
RESTRICTED_POD = {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532,
                  "seccompProfile": {"type": "RuntimeDefault"}}
RESTRICTED_CONTAINER = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]}}
MOUNT = "/mnt/data"
WRITE = (
    "import os, sys, numpy as np; path, n, d, seed = sys.argv[1], *map(int, sys.argv[2:]); "
    "os.makedirs(os.path.dirname(path), exist_ok=True); "
    "np.save(path, np.random.default_rng(seed).standard_normal((n, d), dtype=np.float32))"
)


def vectors(count: int = COUNT, dimension: int = DIMENSION, seed: int = SEED) -> Vectors:
    """(count, dimension) float32: the rows `write_vectors` puts into the claim, row i has id i."""
    return np.random.default_rng(seed).standard_normal((count, dimension), dtype=np.float32)


def claim(name: str, size: str = "1Gi") -> dict[str, Any]:
    """A PersistentVolumeClaim manifest (ReadWriteOnce: the local cluster has one node)."""
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}}


def write_vectors(api: client.ApiClient, namespace: str, claim_name: str, path: str, *,
                  count: int = COUNT, dimension: int = DIMENSION, seed: int = SEED,
                  timeout: float = 120.0) -> None:
    """Create claim `claim_name` (if absent) and run a Job writing `vectors(...)` as .npy to `path`
    inside it; returns when the Job is Complete, raises AssertionError if it fails or times out.
    The Job's name comes from the claim and the path, so each file of a claim has its own Job."""
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    try:
        core.create_namespaced_persistent_volume_claim(namespace, claim(claim_name))
    except client.exceptions.ApiException as error:
        if error.status != 409:
            raise
    name = f"write-{claim_name}-{hashlib.sha256(path.encode()).hexdigest()[:8]}"
    batch.create_namespaced_job(namespace, {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
        "spec": {"backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never",
            "securityContext": RESTRICTED_POD,
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim_name}}],
            "containers": [{"name": "write", "image": WRITER_IMAGE,
                            "command": ["python", "-c", WRITE, f"{MOUNT}/{path.lstrip('/')}",
                                        str(count), str(dimension), str(seed)],
                            "securityContext": RESTRICTED_CONTAINER,
                            "volumeMounts": [{"name": "data", "mountPath": MOUNT}]}],
        }}},
    })

    def complete() -> bool:
        job = batch.read_namespaced_job(name, namespace)
        conditions = {c.type: c.status for c in job.status.conditions or []}
        if conditions.get("Failed") == "True":
            raise AssertionError(f"Job {namespace}/{name} writing the vectors failed: {job.status.conditions}")
        return conditions.get("Complete") == "True"
    wait_for(complete, timeout, f"Job {namespace}/{name} writing {count}x{dimension} vectors Complete")


def exact_neighbours(data: Vectors, query: Vectors, k: int) -> tuple[list[int], list[float]]:
    """Ids and squared L2 distances of the k nearest rows of `data` to one `query`, by brute force."""
    distances = ((data - query[None, :]) ** 2).sum(axis=1)
    order = np.argsort(distances, kind="stable")[:k]
    return [int(i) for i in order], [float(distances[i]) for i in order]
