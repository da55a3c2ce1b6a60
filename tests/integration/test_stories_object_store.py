"""Issue 18: an index whose embeddings and artifacts live in object storage, on the real control
plane, against a real S3 server (versitygw) running in the cluster's network namespace.

The stories run in order on the index `objects` (2000 x 16 vectors in s3://embeddings):
1 first index from s3:// with artifacts in s3:// -> 2 a migration to HNSW, then a GitOps revert
with no rebuild -> 3 a corrupted artifact object: the candidate's pods never Ready, the serving
revision untouched -> 4 the store stopped during a serving pod's download: that pod waits
unready, the others serve, and it comes up when the store is back -> 5 new vectors uploaded
under the same key: the operator sees the new ETag, builds a new revision and rolls it out ->
6 the store stopped while a build runs, after it read its source: the upload fails, the
revision is Failed naming the store, no manifest is ever written, the serving revision
untouched. Alone, on other indexes: wrong credentials and a missing key (the operator's own
HEAD of the source names them: SourceUnavailable, nothing built), and the store down when an
index is applied (SourceUnavailable, then built once the store is back).
"""

from __future__ import annotations

import dataclasses
import io
import json
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.config
import numpy as np
import pytest
from kubernetes import client

from e2e.harness import cluster as cluster_mod
from e2e.harness import objectstore
from e2e.harness.kubectl import Kubectl
from e2e.harness.operator import OperatorProcess
from e2e.harness.waiting import wait_for
from e2e.stories import data, environment
from e2e.stories.chain import Chain
from e2e.stories.faissindex import Index, Obj, body, condition, revision
from tests import s3_store

pytestmark = pytest.mark.integration

NAME = "objects"
SOURCE_BUCKET, ARTIFACTS_BUCKET = "embeddings", "faiss-artifacts"
SOURCE_KEY = "vectors/v1.npy"
SOURCE_URI = f"s3://{SOURCE_BUCKET}/{SOURCE_KEY}"
ARTIFACTS_URI = f"s3://{ARTIFACTS_BUCKET}/stories"
SECRET = "faiss-s3"
ROLLOUT: dict[str, Any] = {"steps": [{"weight": 50, "pauseSeconds": 2}], "scaleDownDelaySeconds": 3,
                           "progressDeadlineSeconds": 120, "revisionHistoryLimit": 5}
IVF = {"indexType": "IVF", "config": {"nlist": 16, "nprobe": 16}}
HNSW = {"indexType": "HNSW", "config": {"m": 16, "efConstruction": 40, "efSearch": 32}}
BUILD_READY_SECONDS = 240
FAIL_SECONDS = 180
RECHECK_SECONDS = 5  # the operator's --source-recheck here: an overwrite is seen within seconds


@dataclasses.dataclass
class Stories:
    namespace: str
    store: objectstore.ObjectStore
    operator: OperatorProcess
    kubectl: Kubectl
    api: client.ApiClient
    chain: Chain

    @property
    def s3(self) -> Any:
        env = self.store.environment()
        return boto3.session.Session().client(
            "s3", endpoint_url=env["AWS_ENDPOINT_URL_S3"], region_name=env["AWS_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            config=botocore.config.Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
        )

    def spec(self, index: dict[str, Any], *, source: str = SOURCE_URI, secret: str = SECRET,
             replicas: int = 1) -> Obj:
        made = environment.index_spec(
            index, rollout=ROLLOUT, source=source, artifacts={"uri": ARTIFACTS_URI},
            objectStore={"endpoint": self.store.endpoint_url, "addressingStyle": "path",
                         "credentialsSecretRef": {"name": secret}},
        )
        made["serving"] = {"replicas": replicas}
        return made

    def apply(self, name: str, spec: Obj) -> None:
        self.kubectl.apply(body(name, spec, namespace=self.namespace))

    def keys(self, prefix: str) -> list[str]:
        answer = self.s3.list_objects_v2(Bucket=ARTIFACTS_BUCKET, Prefix=prefix)
        return sorted(item["Key"] for item in answer.get("Contents", []))

    def pods(self, revision_name: str) -> list[client.V1Pod]:
        return list(client.CoreV1Api(self.api).list_namespaced_pod(
            self.namespace, label_selector=f"faiss.dev/revision={revision_name},faiss.dev/component=serving").items)


def _secret(name: str, credentials: objectstore.Credentials) -> Obj:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "stringData": {"AWS_ACCESS_KEY_ID": credentials.access_key_id,
                           "AWS_SECRET_ACCESS_KEY": credentials.secret_access_key}}


@pytest.fixture(scope="module")
def stories(cluster: cluster_mod.Cluster, api: client.ApiClient, crd: None, kubectl: Kubectl,
            start_operator: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stories]:
    s3_store.require_binary(cluster.bin_dir)
    if cluster.address_block is None:
        pytest.skip("the S3 stories need the local cluster (its network namespace runs the store)")
    store = objectstore.in_cluster(cluster, root=tmp_path_factory.mktemp("versitygw"))
    store.start()
    namespace = _namespace(api)
    client.CoreV1Api(api).create_namespaced_secret(namespace, _secret(SECRET, store.credentials))
    operator = start_operator(namespaces=[namespace], args=["--source-recheck", str(RECHECK_SECONDS)])
    state = Stories(namespace, store, operator, kubectl, api, Chain())
    state.s3.create_bucket(Bucket=SOURCE_BUCKET)
    state.s3.create_bucket(Bucket=ARTIFACTS_BUCKET)
    buffer = io.BytesIO()
    np.save(buffer, data.vectors())
    state.s3.put_object(Bucket=SOURCE_BUCKET, Key=SOURCE_KEY, Body=buffer.getvalue())
    try:
        yield state
    finally:
        environment.delete(api, namespace)
        store.stop()


def _namespace(api: client.ApiClient) -> str:
    core = client.CoreV1Api(api)
    name = f"s3-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    wait_for(lambda: core.read_namespaced_service_account("default", name), 30, f"service account default in {name}")
    return name


def search(host: str, port: int, vector: np.ndarray[Any, np.dtype[np.float32]], k: int) -> Obj:
    request = urllib.request.Request(f"http://{host}:{port}/v1/search",
                                     data=json.dumps({"vector": vector.tolist(), "k": k}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        result: Obj = json.loads(answer.read())
    return result


def answers(host: str, port: int, vector: np.ndarray[Any, np.dtype[np.float32]]) -> Obj | None:
    try:
        return search(host, port, vector, 10)
    except OSError:
        return None


def _download_state(pod: client.V1Pod) -> Any:
    statuses = pod.status.init_container_statuses or []
    return next((s for s in statuses if s.name == "download"), None)


def _download_failed_with(pod: client.V1Pod, text: str) -> bool:
    status = _download_state(pod)
    if status is None:
        return False
    for state in (status.state, status.last_state):
        terminated = state.terminated if state is not None else None
        if terminated is not None and terminated.exit_code != 0 and text in (terminated.message or ""):
            return True
    return False


def _source_unavailable(index: Index, timeout: float, operator: OperatorProcess) -> Obj:
    """Wait for Stalled with reason SourceUnavailable; returns that condition."""
    obj = index.wait(lambda o: (c := condition(o, "Stalled")) is not None and c["reason"] == "SourceUnavailable",
                     timeout, "Stalled: SourceUnavailable", alive=operator.check_running)
    found = condition(obj, "Stalled")
    assert found is not None and found["status"] == "True"
    return found


# --- story 1 -------------------------------------------------------------------------------------


def test_story_1_first_index_from_s3_with_artifacts_in_s3(stories: Stories, kubectl: Kubectl) -> None:
    with stories.chain.story("story 1"):
        index = Index(stories.api, stories.namespace, NAME)
        stories.apply(NAME, stories.spec(IVF))
        waited = kubectl.run("wait", "-n", stories.namespace, f"faissindex/{NAME}", "--for=condition=Ready",
                             f"--timeout={BUILD_READY_SECONDS}s", timeout=BUILD_READY_SECONDS + 10)
        assert waited.stdout.strip() == f"faissindex.faiss.dev/{NAME} condition met"
        obj = index.wait_ready(60, alive=stories.operator.check_running)
        current = obj["status"]["currentRevision"]
        entry = revision(obj, current)
        assert entry is not None and entry["state"] == "Active"
        assert entry["artifact"].startswith(f"{ARTIFACTS_URI}/{NAME}/")
        assert entry["metrics"]["vectors"] == data.COUNT
        prefix = entry["artifact"].removeprefix(f"s3://{ARTIFACTS_BUCKET}/")
        stored = stories.keys(prefix + "/")
        assert f"{prefix}/manifest.json" in stored and f"{prefix}/index.faiss" in stored

        (pod,) = index.ready_pods()[current]
        download = _download_state(pod)
        assert download is not None and download.state.terminated.exit_code == 0
        host, port = index.service_address()
        vectors = data.vectors()
        query = np.random.default_rng(99).standard_normal(data.DIMENSION, dtype=np.float32)
        answer = wait_for(lambda: answers(host, port, query), 30, f"a search through the Service {host}:{port}")
        assert answer["ids"] == data.exact_neighbours(vectors, query, 10)[0]
        stories.chain.values["ivf"] = current


# --- story 2 -------------------------------------------------------------------------------------


def test_story_2_migration_to_hnsw_then_a_gitops_revert_with_no_rebuild(stories: Stories) -> None:
    with stories.chain.story("story 2"):
        index = Index(stories.api, stories.namespace, NAME)
        ivf = stories.chain.values["ivf"]
        stories.apply(NAME, stories.spec(HNSW))
        obj = index.wait(lambda o: o["status"].get("currentRevision") not in (None, ivf)
                         and o["status"].get("phase") == "Ready", BUILD_READY_SECONDS + 120,
                         "HNSW serving alone", alive=stories.operator.check_running)
        hnsw = obj["status"]["currentRevision"]
        builds = index.build_jobs()
        assert sorted(builds) == sorted([f"{NAME}-build-{ivf}", f"{NAME}-build-{hnsw}"])

        stories.apply(NAME, stories.spec(IVF))
        obj = index.wait(lambda o: o["status"].get("currentRevision") == ivf and o["status"].get("phase") == "Ready",
                         BUILD_READY_SECONDS, "the IVF revision serving again", alive=stories.operator.check_running)
        assert index.build_jobs() == builds  # no new build: the stored artifact was downloaded again
        stories.chain.values["hnsw"] = hnsw


# --- story 3 -------------------------------------------------------------------------------------


def test_story_3_a_corrupted_artifact_object_keeps_its_pods_unready_and_the_serving_revision_untouched(
        stories: Stories) -> None:
    with stories.chain.story("story 3"):
        index = Index(stories.api, stories.namespace, NAME)
        ivf, hnsw = stories.chain.values["ivf"], stories.chain.values["hnsw"]
        # Until its scale-down delay is over, the HNSW pod (with its verified local copy) could
        # serve again at once; the corrupt object must be what a new pod downloads.
        wait_for(lambda: not stories.pods(hnsw), 90, "the HNSW pods gone after the revert")
        entry = revision(index.get(), hnsw)
        assert entry is not None
        key = entry["artifact"].removeprefix(f"s3://{ARTIFACTS_BUCKET}/") + "/index.faiss"
        original = stories.s3.get_object(Bucket=ARTIFACTS_BUCKET, Key=key)["Body"].read()
        flipped = bytearray(original)
        flipped[len(flipped) // 2] ^= 0xFF
        stories.s3.put_object(Bucket=ARTIFACTS_BUCKET, Key=key, Body=bytes(flipped))
        try:
            stories.apply(NAME, stories.spec(HNSW))  # back to the stored HNSW artifact, now corrupt
            pods = wait_for(lambda: [p for p in stories.pods(hnsw)
                                     if _download_failed_with(p, "index.faiss is corrupt")] or None,
                            120, "an HNSW pod whose download failed its checksum")
            assert not any(c.ready for p in pods for c in (p.status.container_statuses or []))
            status = index.get()["status"]
            assert status["currentRevision"] == ivf
            ready = condition(index.get(), "Ready")
            assert ready is not None and ready["status"] == "True"
            assert [p.metadata.name for p in index.ready_pods().get(ivf, [])]
        finally:
            stories.s3.put_object(Bucket=ARTIFACTS_BUCKET, Key=key, Body=original)
            stories.apply(NAME, stories.spec(IVF))
        index.wait(lambda o: o["status"].get("currentRevision") == ivf and o["status"].get("phase") == "Ready"
                   and not o["status"].get("candidateRevision"), BUILD_READY_SECONDS, "IVF alone again",
                   alive=stories.operator.check_running)


# --- story 4 -------------------------------------------------------------------------------------


def test_story_4_the_store_stopped_during_a_serving_pods_download(stories: Stories) -> None:
    with stories.chain.story("story 4"):
        index = Index(stories.api, stories.namespace, NAME)
        ivf = stories.chain.values["ivf"]
        before = {p.metadata.name for p in index.ready_pods()[ivf]}
        stories.store.stop()
        try:
            stories.apply(NAME, stories.spec(IVF, replicas=2))
            waiting = wait_for(lambda: [p for p in stories.pods(ivf) if p.metadata.name not in before
                                        and _download_failed_with(p, "the store is unreachable")] or None,
                               120, "the new pod's download failing while the store is down")
            assert {p.metadata.name for p in index.ready_pods()[ivf]} == before  # the old pod still serves
        finally:
            stories.store.start()
        new = waiting[0].metadata.name
        wait_for(lambda: new in {p.metadata.name for p in index.ready_pods().get(ivf, [])}, 180,
                 f"pod {new} Ready once the store is back")


# --- alone: wrong credentials, a missing key, the store down during a build ----------------------


def test_story_5_new_vectors_under_the_same_key_build_a_new_revision_and_roll_it_out(stories: Stories) -> None:
    with stories.chain.story("story 5"):
        index = Index(stories.api, stories.namespace, NAME)
        ivf = stories.chain.values["ivf"]
        builds = index.build_jobs()
        new_vectors = data.vectors(seed=data.SEED + 5)
        buffer = io.BytesIO()
        np.save(buffer, new_vectors)
        stories.s3.put_object(Bucket=SOURCE_BUCKET, Key=SOURCE_KEY, Body=buffer.getvalue())  # same key, new bytes
        obj = index.wait(lambda o: o["status"].get("currentRevision") not in (None, ivf)
                         and o["status"].get("phase") == "Ready" and not o["status"].get("candidateRevision"),
                         RECHECK_SECONDS + BUILD_READY_SECONDS + 120, "the revision of the new upload serving alone",
                         alive=stories.operator.check_running)
        new = obj["status"]["currentRevision"]
        assert index.build_jobs() == sorted([*builds, f"{NAME}-build-{new}"])
        entry = revision(obj, new)
        assert entry is not None and entry["state"] == "Active"
        assert entry["artifact"] != (revision(obj, ivf) or {}).get("artifact")  # a new artifact, not the old one
        # The pods serve the new vectors.
        host, port = index.service_address()
        query = np.random.default_rng(5).standard_normal(data.DIMENSION, dtype=np.float32)
        wanted = data.exact_neighbours(new_vectors, query, 10)[0]
        wait_for(lambda: (answers(host, port, query) or {}).get("ids") == wanted, 60,
                 "the Service answering from the new vectors")
        stories.chain.values["latest"] = new


# --- story 6 -------------------------------------------------------------------------------------


def _build_log(stories: Stories, revision_name: str) -> str:
    core = client.CoreV1Api(stories.api)
    pods = core.list_namespaced_pod(stories.namespace, label_selector=f"job-name={NAME}-build-{revision_name}").items
    text = ""
    for pod in pods:
        try:
            # None, not "", while the container has written nothing yet
            text += core.read_namespaced_pod_log(pod.metadata.name, stories.namespace, container="build") or ""
        except client.ApiException:
            pass
    return text


def test_story_6_the_store_stopped_during_a_build_fails_it_and_nothing_partial_serves(stories: Stories) -> None:
    with stories.chain.story("story 6"):
        index = Index(stories.api, stories.namespace, NAME)
        latest = stories.chain.values["latest"]
        # Enough vectors that adding them to HNSW takes seconds: the store goes away once the build
        # has read its source, so what fails is the artifact's upload.
        big = data.vectors(count=40_000, seed=data.SEED + 6)
        buffer = io.BytesIO()
        np.save(buffer, big)
        stories.s3.put_object(Bucket=SOURCE_BUCKET, Key="vectors/big.npy", Body=buffer.getvalue())
        slow = {"indexType": "HNSW", "config": {"m": 32, "efConstruction": 400, "efSearch": 32}}
        stories.apply(NAME, stories.spec(slow, source=f"s3://{SOURCE_BUCKET}/vectors/big.npy"))
        obj = index.wait(lambda o: o["status"].get("candidateRevision") not in (None, latest), 60,
                         "a candidate building", alive=stories.operator.check_running)
        candidate = obj["status"]["candidateRevision"]
        wait_for(lambda: "phase=add" in _build_log(stories, candidate) or None, 180,
                 "the build adding vectors (its source read)")
        assert "phase=write percent=100" not in _build_log(stories, candidate), "the build ended before the store stopped"
        stories.store.stop()
        try:
            obj = index.wait(lambda o: (revision(o, candidate) or {}).get("state") == "Failed", FAIL_SECONDS,
                             f"revision {candidate} Failed", alive=stories.operator.check_running)
            entry = revision(obj, candidate)
            assert entry is not None
            built = condition(obj, "IndexBuilt")
            assert built is not None and built["status"] == "False" and "unreachable" in built["message"], built
            assert obj["status"]["currentRevision"] == latest
            assert [p.metadata.name for p in index.ready_pods().get(latest, [])]
        finally:
            stories.store.start()
        prefix = entry["artifact"].removeprefix(f"s3://{ARTIFACTS_BUCKET}/") + "/"
        assert f"{prefix}manifest.json" not in stories.keys(prefix)  # nothing a pod could ever serve
        stories.apply(NAME, stories.spec(IVF))
        index.wait(lambda o: o["status"].get("currentRevision") == latest and o["status"].get("phase") == "Ready"
                   and not o["status"].get("candidateRevision"), BUILD_READY_SECONDS, "the latest revision alone",
                   alive=stories.operator.check_running)


# --- alone: wrong credentials, a missing key, the store down ----------------------------------


def test_wrong_credentials_are_named_before_anything_is_built(stories: Stories) -> None:
    core = client.CoreV1Api(stories.api)
    core.create_namespaced_secret(stories.namespace, _secret(
        "wrong-s3", objectstore.Credentials(stories.store.credentials.access_key_id, "not-the-secret")))
    index = Index(stories.api, stories.namespace, "denied")
    stories.apply("denied", stories.spec(IVF, secret="wrong-s3"))
    stalled = _source_unavailable(index, FAIL_SECONDS, stories.operator)
    assert SOURCE_URI in stalled["message"]
    assert "access denied" in stalled["message"] and "check the credentials" in stalled["message"]
    assert index.build_jobs() == [] and not index.deployments()


def test_a_missing_key_is_named_before_anything_is_built(stories: Stories) -> None:
    index = Index(stories.api, stories.namespace, "missing")
    stories.apply("missing", stories.spec(IVF, source=f"s3://{SOURCE_BUCKET}/vectors/nope.npy"))
    stalled = _source_unavailable(index, FAIL_SECONDS, stories.operator)
    assert f"s3://{SOURCE_BUCKET}/vectors/nope.npy" in stalled["message"] and "no such object" in stalled["message"]
    assert index.build_jobs() == [] and not index.deployments()


def test_the_store_down_when_an_index_is_applied_then_back_builds_it(stories: Stories) -> None:
    index = Index(stories.api, stories.namespace, "outage")
    stories.store.stop()
    try:
        stories.apply("outage", stories.spec(IVF))
        stalled = _source_unavailable(index, FAIL_SECONDS, stories.operator)
        assert "the store is unreachable" in stalled["message"]
        assert index.build_jobs() == []  # nothing built, so nothing written to the store
    finally:
        stories.store.start()
    index.wait_ready(BUILD_READY_SECONDS, alive=stories.operator.check_running)
    after = condition(index.get(), "Stalled")
    assert after is not None and after["status"] == "False"
