"""A serving pod's time from scheduled to Ready: its artifact in s3:// beside the same on a claim.

Starts its own local cluster (the k8s build first) and a versitygw inside its network namespace,
puts one artifact (by default the cached 1M x 384 HNSW32 one of artifact_transfer.py) both in a
bucket and on a claim, then, round by round, creates the serving Deployment the operator would
make (controller/decision/manifests.deployment: for s3:// the `download` init container that
fetches and checks every file, then `serve`; for the claim `serve` on the mounted files) and
measures on the client's clock, polled every 0.1 s, from the pod's PodScheduled condition to its
Ready one. For s3:// the download's own time comes from the init container's log line
(`Downloaded and verified artifact: ... seconds=...`); the goal is Ready within that time + 10 %.
Pods run in the cluster's default runtime; the readiness probe's period (2 s) is the operator's.

    .venv/bin/python benchmarks/serving_start.py [--rounds 3] [--artifact DIR | --vectors N]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from kubernetes import client

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import artifact_transfer  # noqa: E402
from e2e.harness import cluster as cluster_mod  # noqa: E402
from e2e.harness import objectstore  # noqa: E402
from e2e.harness.waiting import wait_for  # noqa: E402
from e2e.stories import data, environment  # noqa: E402
from faiss_operator.api import resource as api_resource  # noqa: E402
from faiss_operator.api import status as api_status  # noqa: E402
from faiss_operator.controller.decision import manifests  # noqa: E402
from faiss_operator.index import artifact  # noqa: E402
from faiss_operator.sources import artifact_store, s3  # noqa: E402

BUCKET, KEY, CLAIM, SECRET, INDEX = "bench", "alerts/k1", "bench-artifacts", "faiss-s3", "alerts"
DOWNLOADED = re.compile(r"Downloaded and verified artifact: .* seconds=([0-9.]+)")


def _condition_true(pod: Any, kind: str) -> bool:
    return any(c.type == kind and c.status == "True" for c in (pod.status.conditions or []))


def start_pod(core: client.CoreV1Api, apps: client.AppsV1Api, namespace: str, manifest: dict[str, Any],
              revision: str) -> tuple[float, float | None]:  # fmt: skip
    """Create the Deployment, return (scheduled -> Ready seconds, the download's own seconds or None)."""
    manifest["metadata"].pop("ownerReferences", None)  # no FaissIndex here: the garbage collector would delete it
    apps.create_namespaced_deployment(namespace, manifest)  # type: ignore[arg-type]
    selector = f"{manifests.LABEL_REVISION}={revision}"
    times: dict[str, float] = {}
    names: list[str] = []

    def ready() -> bool:
        now = time.monotonic()
        for pod in core.list_namespaced_pod(namespace, label_selector=selector).items:
            if _condition_true(pod, "PodScheduled"):
                times.setdefault("scheduled", now)
            if _condition_true(pod, "Ready") and "ready" not in times:
                times["ready"] = now
                names.append(str(pod.metadata.name if pod.metadata else ""))
        return "ready" in times

    wait_for(ready, 900, f"the {revision} pod Ready", interval=0.1)
    download = None
    pod = core.read_namespaced_pod(names[0], namespace)
    init = (pod.spec.init_containers if pod.spec else None) or []
    if init:
        log = core.read_namespaced_pod_log(names[0], namespace, container=init[0].name)
        found = DOWNLOADED.search(log)
        download = float(found.group(1)) if found else None
    apps.delete_namespaced_deployment(manifest["metadata"]["name"], namespace)
    wait_for(lambda: not core.list_namespaced_pod(namespace, label_selector=selector).items, 120,
             f"the {revision} pods gone", interval=0.2)
    return times["ready"] - times["scheduled"], download


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--vectors", type=int, default=1_000_000)
    parser.add_argument("--dimension", type=int, default=384)
    parser.add_argument("--artifact", type=Path, help="an artifact directory instead of the cached one")
    args = parser.parse_args()
    local = args.artifact or artifact_transfer.cached_artifact(args.vectors, args.dimension)
    manifest_file = artifact.verify_artifact(local)
    total = sum((local / name).stat().st_size for name in manifest_file["files"])
    loads = [artifact_transfer.load_average()]
    with tempfile.TemporaryDirectory(prefix="serving-start-") as state:
        c = cluster_mod.Cluster(Path(state))
        c.up(timeout=180)
        store = objectstore.in_cluster(c, root=Path(state) / "store")
        try:
            store.start()
            env = store.environment()
            settings = s3.Settings.from_environment(env)
            s3_client = s3.client(settings, environ=env)
            s3_client.create_bucket(Bucket=BUCKET)
            artifact_store.upload(s3_client, local, s3.Location(BUCKET, KEY), settings=settings)
            api = c.api_client()
            core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
            namespace = f"bench-{uuid.uuid4().hex[:6]}"
            core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})  # type: ignore[arg-type]
            wait_for(lambda: core.list_namespaced_service_account(namespace).items, 30, "default service account")
            core.create_namespaced_secret(namespace, {  # type: ignore[arg-type]
                "apiVersion": "v1", "kind": "Secret", "metadata": {"name": SECRET},
                "stringData": {"AWS_ACCESS_KEY_ID": store.credentials.access_key_id,
                               "AWS_SECRET_ACCESS_KEY": store.credentials.secret_access_key}})  # fmt: skip
            core.create_namespaced_persistent_volume_claim(namespace, data.claim(CLAIM, "20Gi"))  # type: ignore[arg-type]
            on_claim = environment.claim_host_path(api, namespace, CLAIM) / KEY
            shutil.copytree(local, on_claim)
            wire = {"dimension": args.dimension, "source": {"uri": "s3://bench/v.npy"}, "serving": {"replicas": 1},
                    "objectStore": {"endpoint": store.endpoint_url, "addressingStyle": "path",
                                    "credentialsSecretRef": {"name": SECRET}}}  # fmt: skip
            resource = api_resource.Resource(name=INDEX, namespace=namespace, uid="bench", generation=1, spec=wire,
                                             status=api_status.FaissIndexStatus())  # fmt: skip
            spec = api_resource.parse_spec(wire)
            results: dict[str, list[tuple[float, float | None]]] = {"s3": [], "claim": []}
            for number in range(args.rounds):
                for where, uri in (("s3", f"s3://{BUCKET}/{KEY}"), ("claim", f"pvc://{CLAIM}/{KEY}")):
                    revision = f"{where}{number}"
                    made = manifests.deployment(resource, spec, revision=revision, artifact=uri, search_params={},
                                                replicas=1, image="faiss-operator:dev", object_store=spec.object_store)
                    results[where].append(start_pod(core, apps, namespace, made, revision))
            loads.append(artifact_transfer.load_average())
        finally:
            store.stop()
            c.down()
    ready = {where: statistics.median(r for r, _ in rows) for where, rows in results.items()}
    downloads = [d for _, d in results["s3"] if d is not None]
    download = statistics.median(downloads) if downloads else float("nan")
    print(f"artifact: {total / 1e6:.1f} MB in {len(manifest_file['files']) + 1} files; {platform.machine()}, "
          f"{os.cpu_count()} cores; median of {args.rounds}; load average (1/5/15 min) before, after: {' | '.join(loads)}")
    print("| artifact in | scheduled -> Ready s | download alone s (init container) | Ready / download |")
    print("|---|---|---|---|")
    print(f"| s3:// | {ready['s3']:.1f} | {download:.1f} | {ready['s3'] / download:.2f} |")
    print(f"| claim | {ready['claim']:.1f} | - | - |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
