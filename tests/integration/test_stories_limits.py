"""Issue 17, section 3, on the real control plane: pods killed for memory.

These stories need a kubelet that enforces `resources.limits.memory` (a container over its limit
killed by the kernel and reported OOMKilled, exit code 137). Their build and serving pods name
`runtimeClassName: runc`: on the local cluster that is the process kubelet's runc path, which runs
them from the image `make image` builds (e2e/harness/kubelet, docs/local-control-plane.md), while
the vectors' writer stays a process of the node's default runtime. A cluster without a
RuntimeClass `runc` fails the stories at once, saying so.

* A Flat build Job over 600,000 x 64 vectors (146.5 MiB as float32) with a 120Mi memory limit,
  below the 146.5 MiB of vectors the index itself must hold (a limit above it is a bet on the
  program's own overhead: 200Mi was enough to kill the build until the build stopped holding a
  Python int per id, then the build fit): the kernel kills the build, and the revision ends
  Failed with reason BuildOOMKilled, its message naming the limit and the measured input.
* A serving Deployment whose memory limit is lowered below what one serving process needs: the
  new pod is killed for memory at start, Degraded says ServingOOMKilled naming the pod, while the
  old pod (the Deployment's rollout keeps it) still serves, Ready True.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from e2e.harness.kubectl import Kubectl
from e2e.harness.operator import OperatorProcess
from e2e.stories import data, environment
from e2e.stories.faissindex import Index, Obj, body, condition

pytestmark = pytest.mark.integration

HNSW = {"indexType": "HNSW", "config": {"m": 16, "efConstruction": 40, "efSearch": 32}}
FLAT = {"indexType": "Flat"}
BIG_PATH, BIG_ROWS, BIG_DIMENSION = "vectors/big.npy", 600_000, 64
BUILD_LIMIT = "120Mi"  # below the Flat index alone: BIG_ROWS x BIG_DIMENSION x 4 B = 146.5 MiB
# Below what one serving process needs to import FAISS and numpy (~65 MiB measured, docs/benchmarks.md).
SERVING_LIMIT = "40Mi"
READY_SECONDS = 240
ROLLOUT = {"scaleDownDelaySeconds": 5, "progressDeadlineSeconds": 150}
# The RuntimeClass whose handler enforces memory limits (the local cluster's runc path).
LIMITS = {"runtimeClassName": "runc"}


@pytest.fixture(scope="module")
def story(api: client.ApiClient, crd: None, start_operator: Any) -> Iterator[tuple[str, OperatorProcess]]:
    try:
        client.NodeV1Api(api).read_runtime_class(LIMITS["runtimeClassName"])
    except client.exceptions.ApiException as error:
        raise AssertionError(
            f"these stories need a RuntimeClass {LIMITS['runtimeClassName']!r} whose runtime enforces memory limits: "
            f"{error.status} {error.reason}"
        ) from error
    story_ns = environment.create(api, "oom")
    operator = start_operator(namespaces=[story_ns.name])
    try:
        yield story_ns.name, operator
    finally:
        environment.delete(api, story_ns.name)


def test_a_build_over_its_memory_limit_ends_its_revision_with_BuildOOMKilled(
    api: client.ApiClient, kubectl: Kubectl, story: tuple[str, OperatorProcess]
) -> None:
    namespace, operator = story
    data.write_vectors(api, namespace, environment.SOURCE_CLAIM, BIG_PATH, count=BIG_ROWS, dimension=BIG_DIMENSION)
    spec: Obj = {
        **environment.index_spec(FLAT, rollout=ROLLOUT, source=f"pvc://{environment.SOURCE_CLAIM}/{BIG_PATH}"),
        "dimension": BIG_DIMENSION,
        "build": {"backoffLimit": 0, "resources": {"limits": {"memory": BUILD_LIMIT}}, **LIMITS},
    }
    index = Index(api, namespace, "big")
    kubectl.apply(body("big", spec, namespace=namespace))
    obj = index.wait(lambda o: any(r.get("state") == "Failed" for r in (o.get("status") or {}).get("revisions") or []),
                     READY_SECONDS, "the revision Failed", alive=operator.check_running)  # fmt: skip
    (entry,) = obj["status"]["revisions"]
    assert entry["reason"] == "BuildOOMKilled", entry
    assert entry["message"] == (
        f"the build container was killed for memory (OOMKilled, exit code 137) at its memory limit {BUILD_LIMIT}, "
        f"its input: {BIG_ROWS} vectors x {BIG_DIMENSION} dimensions = "
        f"{BIG_ROWS * BIG_DIMENSION * 4 / 1024 / 1024:.1f} MiB as float32; "
        "raise spec.build.resources.limits.memory, or choose an index type that needs less memory"
    ), entry["message"]
    assert obj["status"]["phase"] == "Failed"


def test_a_serving_pod_over_its_memory_limit_shows_in_Degraded_while_the_old_pod_serves(
    api: client.ApiClient, kubectl: Kubectl, story: tuple[str, OperatorProcess]
) -> None:
    namespace, operator = story
    index = Index(api, namespace, "small")
    spec = environment.index_spec(HNSW, rollout=ROLLOUT, build=LIMITS, serving={"replicas": 1, **LIMITS})
    kubectl.apply(body("small", spec, namespace=namespace))
    obj = index.wait_ready(READY_SECONDS, alive=operator.check_running)
    revision = obj["status"]["currentRevision"]

    limited = {**spec, "serving": {"replicas": 1, **LIMITS, "resources": {"limits": {"memory": SERVING_LIMIT}}}}
    kubectl.apply(body("small", limited, namespace=namespace))

    def degraded(o: Obj) -> bool:
        found = condition(o, "Degraded")
        return found is not None and found["reason"] == "ServingOOMKilled"

    obj = index.wait(degraded, READY_SECONDS, "Degraded ServingOOMKilled", alive=operator.check_running)
    found = condition(obj, "Degraded")
    assert found is not None
    assert re.fullmatch(
        rf"pod small-{revision}-[a-z0-9]+-[a-z0-9]+ was OOMKilled \(restarts: [0-9]+\); the server ran out of memory "
        rf"under its memory limit {SERVING_LIMIT}: raise spec.serving.resources.limits.memory",
        found["message"],
    ), found["message"]
    ready = condition(obj, "Ready")
    assert ready is not None and ready["status"] == "True", ready
    assert obj["status"]["currentRevision"] == revision
