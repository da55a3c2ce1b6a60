"""Child manifests: names, labels, owner references, volumes, the two programs' command lines."""

from __future__ import annotations

import json
from typing import Any

import pytest
from faiss_operator.api import resource as api_resource
from faiss_operator.controller.decision import manifests, programs, storage

from tests.controller.builders import make_resource, spec


def parsed(**overrides: Any) -> Any:
    return api_resource.parse_spec(spec(**overrides))


RESOURCE = make_resource(spec())
# Every pod's scratch space (controller/decision/pod_settings.py; tests/controller/decision/test_pod_settings.py).
TMP_VOLUME = {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}
TMP_MOUNT = {"name": "tmp", "mountPath": "/tmp"}
OWNER = {
    "apiVersion": "faiss.dev/v1alpha1",
    "kind": "FaissIndex",
    "name": "alerts",
    "uid": "uid-1",
    "controller": True,
    "blockOwnerDeletion": True,
}


def build_job(**overrides: Any) -> dict[str, Any]:
    return manifests.build_job(
        RESOURCE,
        parsed(**overrides),
        revision="r1",
        attempt=0,
        artifact="pvc://faiss-artifacts/alerts/k1",
        index_type="HNSW",
        build_config={"m": 16, "ef_construction": 100},
        image="img:1",
    )


def test_the_build_job_runs_faiss_operator_build_with_every_flag() -> None:
    job = build_job(source={"uri": "pvc://embeddings/alerts/v1.npy", "idsUri": "pvc://embeddings/alerts/ids.txt"})
    assert job["metadata"]["name"] == "alerts-build-r1"
    assert job["metadata"]["ownerReferences"] == [OWNER]
    assert (
        job["metadata"]["labels"]["faiss.dev/index"] == "alerts"
        and job["metadata"]["labels"]["faiss.dev/revision"] == "r1"
    )
    assert (job["spec"]["backoffLimit"], job["spec"]["activeDeadlineSeconds"]) == (1, 3600)
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["faiss-operator"]
    assert container["args"] == [
        "build",
        "--source", "/mnt/pvc/embeddings/alerts/v1.npy",
        "--out", "/mnt/pvc/faiss-artifacts/alerts/k1",
        "--index-type", "HNSW",
        "--config", json.dumps({"ef_construction": 100, "m": 16}, separators=(",", ":")),
        "--dimension", "8",
        "--metric", "L2",
        "--k", "10",
        "--eval-queries", "100",
        "--termination-log", "/dev/termination-log",
        "--overwrite",
        "--ids", "/mnt/pvc/embeddings/alerts/ids.txt",
        "--revision", "r1",
    ]  # fmt: skip
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert pod["restartPolicy"] == "Never"
    assert pod["volumes"] == [
        {"name": "pvc-0", "persistentVolumeClaim": {"claimName": "embeddings", "readOnly": True}},
        {"name": "pvc-1", "persistentVolumeClaim": {"claimName": "faiss-artifacts", "readOnly": False}},
        TMP_VOLUME,
    ]
    assert container["volumeMounts"] == [
        {"name": "pvc-0", "mountPath": "/mnt/pvc/embeddings", "readOnly": True},
        {"name": "pvc-1", "mountPath": "/mnt/pvc/faiss-artifacts", "readOnly": False},
        TMP_MOUNT,
    ]
    assert job["spec"]["template"]["metadata"]["labels"][manifests.LABEL_BUILD_JOB] == "alerts-build-r1"


def test_source_and_artifacts_on_one_claim_mount_it_once_read_write_in_the_job() -> None:
    job = build_job(source={"uri": "pvc://faiss-artifacts/inputs/v1.npy"})
    assert job["spec"]["template"]["spec"]["volumes"] == [
        {"name": "pvc-0", "persistentVolumeClaim": {"claimName": "faiss-artifacts", "readOnly": False}},
        TMP_VOLUME,
    ]


def test_http_and_file_sources_need_no_volume() -> None:
    job = build_job(
        source={"uri": "https://data.example/v1.npy"},
        build={"nodeSelector": {"pool": "big"}, "tolerations": [{"key": "k", "operator": "Exists"}]},
    )
    pod = job["spec"]["template"]["spec"]
    assert [v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if v != TMP_VOLUME] == ["faiss-artifacts"]
    assert pod["containers"][0]["args"][2] == "https://data.example/v1.npy"
    assert pod["nodeSelector"] == {"pool": "big"} and pod["tolerations"] == [{"key": "k", "operator": "Exists"}]


def deployment(replicas: int = 3, **overrides: Any) -> dict[str, Any]:
    return manifests.deployment(
        RESOURCE, parsed(**overrides), revision="r1", artifact="pvc://faiss-artifacts/alerts/k1",
        search_params={"ef_search": 64}, replicas=replicas, image="img:1",
    )  # fmt: skip


def test_the_deployment_serves_the_artifact_read_only_with_probes() -> None:
    manifest = deployment(serving={"replicas": 3, "port": 9000, "resources": {"limits": {"memory": "2Gi"}}})
    assert manifest["metadata"]["name"] == "alerts-r1" and manifest["metadata"]["ownerReferences"] == [OWNER]
    assert manifest["spec"]["replicas"] == 3
    assert manifest["spec"]["selector"]["matchLabels"] == {
        "faiss.dev/index": "alerts",
        "faiss.dev/component": "serving",
        "faiss.dev/revision": "r1",
    }
    pod = manifest["spec"]["template"]
    assert manifest["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    (container,) = pod["spec"]["containers"]
    assert container["args"] == [
        "serve", "--artifact", "/mnt/pvc/faiss-artifacts/alerts/k1", "--port", "9000", "--revision", "r1",
        "--drain-delay", "5", "--drain-seconds", "20",
        "--search-params", '{"ef_search":64}',
    ]  # fmt: skip
    # SIGKILL must not come before the drain delay and the drain are over.
    assert pod["spec"]["terminationGracePeriodSeconds"] == 30
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["ports"] == [{"name": "http", "containerPort": 9000, "protocol": "TCP"}]
    assert container["resources"] == {"limits": {"memory": "2Gi"}}
    assert pod["spec"]["volumes"] == [
        {"name": "pvc-0", "persistentVolumeClaim": {"claimName": "faiss-artifacts", "readOnly": True}},
        TMP_VOLUME,
    ]


def test_the_service_and_pdb_select_every_revisions_serving_pods() -> None:
    service = manifests.service(RESOURCE, parsed())
    budget = manifests.disruption_budget(RESOURCE, parsed())
    selector = {"faiss.dev/index": "alerts", "faiss.dev/component": "serving"}
    assert service["spec"]["selector"] == selector and budget["spec"]["selector"]["matchLabels"] == selector
    assert selector.items() <= deployment()["spec"]["template"]["metadata"]["labels"].items()
    assert service["spec"]["ports"] == [{"name": "http", "port": 8080, "targetPort": "http"}]


def test_the_spec_hash_is_stable_and_follows_every_change() -> None:
    hashes = {deployment()["metadata"]["annotations"][manifests.ANNOTATION_SPEC_HASH] for _ in range(3)}
    assert len(hashes) == 1
    assert deployment(replicas=4)["metadata"]["annotations"] != deployment(replicas=3)["metadata"]["annotations"]


def test_names_stay_within_63_characters_and_distinct() -> None:
    long_a, long_b = "a" * 80 + "-x", "a" * 80 + "-y"
    names = {manifests.job_name(long_a, "0123456789", 12), manifests.job_name(long_b, "0123456789", 12)}
    assert len(names) == 2 and all(len(n) <= 63 for n in names)
    assert all(n.endswith("-build-0123456789-12") for n in names)
    assert len(manifests.service_name(long_a)) <= 63 and len(manifests.label_value(long_a)) <= 63
    assert manifests.deployment_name("alerts", "abc") == "alerts-abc"


@pytest.mark.parametrize(
    ("uri", "claim", "path", "mounted"),
    [
        ("pvc://embeddings/a/b.npy", "embeddings", "a/b.npy", "/mnt/pvc/embeddings/a/b.npy"),
        ("pvc://store", "store", "", "/mnt/pvc/store"),
        ("pvc://store/", "store", "", "/mnt/pvc/store"),
        ("pvc://store/a/../b", "store", "b", "/mnt/pvc/store/b"),
    ],
)
def test_pvc_uris_map_to_one_mount_path(uri: str, claim: str, path: str, mounted: str) -> None:
    location = storage.parse_pvc(uri)
    assert (location.claim, location.path, location.container_path) == (claim, path, mounted)


@pytest.mark.parametrize(
    ("uri", "error"),
    [
        ("file:///x", "not a pvc://"),
        ("pvc:///x", "no claim name"),
        ("pvc://store/../../etc", "must stay inside the claim"),
    ],
)
def test_bad_pvc_uris_are_refused(uri: str, error: str) -> None:
    with pytest.raises(storage.StorageError, match=error):
        storage.parse_pvc(uri)


def test_artifacts_live_under_index_and_artifact_key() -> None:
    assert storage.artifact_uri("pvc://faiss-artifacts", "alerts", "k1") == "pvc://faiss-artifacts/alerts/k1"
    assert storage.artifact_uri("pvc://store/prod", "alerts", "k1") == "pvc://store/prod/alerts/k1"
    assert storage.container_location("https://x/y.npy") == "https://x/y.npy"


def test_the_cleanup_job_removes_one_directory_with_python() -> None:
    job = manifests.cleanup_job(
        RESOURCE, target="pvc://faiss-artifacts/alerts/k1", key="k1", image="img", ttl_seconds=60
    )
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert [*container["command"], *container["args"]] == programs.remove_args("/mnt/pvc/faiss-artifacts/alerts/k1")
    assert container["volumeMounts"][0]["readOnly"] is False


def test_every_child_carries_the_children_selector() -> None:
    selector = manifests.children_selector("alerts")
    children = [
        build_job(),
        deployment(),
        manifests.service(RESOURCE, parsed()),
        manifests.disruption_budget(RESOURCE, parsed()),
        manifests.cleanup_job(RESOURCE, target="pvc://a/b", key="k", image="i", ttl_seconds=1),
    ]
    for child in children:
        assert selector.items() <= child["metadata"]["labels"].items(), child["kind"]
