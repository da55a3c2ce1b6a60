"""Child manifests for s3:// sources and artifacts: no claim, a scratch emptyDir for the build, an
init container that downloads and verifies for serving, the SDK's variables from the objectStore
settings and credentials only ever as Secret references."""

from __future__ import annotations

from typing import Any

import pytest
from faiss_operator.api import resource as api_resource, spec as api_spec
from faiss_operator.controller.decision import manifests, object_store, settings as operator_settings, storage

from tests.controller.builders import make_resource, spec

STORE = {"endpoint": "http://store:7070", "region": "eu-west-1", "addressingStyle": "path",
         "credentialsSecretRef": {"name": "faiss-s3"}}
ARTIFACT = "s3://faiss-artifacts/prod/alerts/k1"
# Every pod's writable /tmp on a read-only root (the restricted defaults).
TMP_VOLUME = {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}
TMP_MOUNT = {"name": "tmp", "mountPath": "/tmp"}
TMPDIR = {"name": "TMPDIR", "value": "/tmp"}


def _store_env(container: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in container.get("env", []) if e["name"].startswith(("AWS_", "FAISS_S3_"))]
ENV = [
    {"name": "AWS_ENDPOINT_URL_S3", "value": "http://store:7070"},
    {"name": "AWS_REGION", "value": "eu-west-1"},
    {"name": "FAISS_S3_ADDRESSING_STYLE", "value": "path"},
    {"name": "AWS_ACCESS_KEY_ID", "valueFrom": {"secretKeyRef": {"name": "faiss-s3", "key": "AWS_ACCESS_KEY_ID"}}},
    {"name": "AWS_SECRET_ACCESS_KEY",
     "valueFrom": {"secretKeyRef": {"name": "faiss-s3", "key": "AWS_SECRET_ACCESS_KEY"}}},
]


def _store(**fields: Any) -> api_spec.ObjectStoreSpec:
    return api_spec.ObjectStoreSpec.model_validate(fields)


def test_a_build_from_s3_to_s3_has_no_claim_a_scratch_volume_and_the_store_env() -> None:
    parsed = api_resource.parse_spec(spec(source={"uri": "s3://embeddings/alerts/v1.npy"}, objectStore=STORE))
    job = manifests.build_job(
        make_resource(spec()), parsed, revision="r1", attempt=0, artifact=ARTIFACT, index_type="Flat",
        build_config={}, image="img:1", object_store=parsed.object_store,
    )
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = container["args"]
    assert args[args.index("--source") + 1] == "s3://embeddings/alerts/v1.npy"
    assert args[args.index("--out") + 1] == ARTIFACT
    assert args[-2:] == ["--scratch", "/var/lib/faiss-operator/scratch"]
    assert pod["volumes"] == [{"name": "scratch", "emptyDir": {}}, TMP_VOLUME]
    assert container["volumeMounts"] == [{"name": "scratch", "mountPath": "/var/lib/faiss-operator/scratch"}, TMP_MOUNT]
    assert container["env"] == [*ENV, TMPDIR]


def test_a_build_on_claims_only_carries_no_store_env() -> None:
    parsed = api_resource.parse_spec(spec(objectStore=STORE))
    job = manifests.build_job(
        make_resource(spec()), parsed, revision="r1", attempt=0, artifact="pvc://faiss-artifacts/alerts/k1",
        index_type="Flat", build_config={}, image="img:1", object_store=parsed.object_store,
    )
    assert _store_env(job["spec"]["template"]["spec"]["containers"][0]) == []


def test_a_serving_pod_downloads_and_verifies_in_an_init_container_then_maps_the_local_copy() -> None:
    parsed = api_resource.parse_spec(spec(objectStore=STORE))
    deployment = manifests.deployment(
        make_resource(spec()), parsed, revision="r1", artifact=ARTIFACT, search_params={}, replicas=2,
        image="img:1", object_store=parsed.object_store,
    )
    pod = deployment["spec"]["template"]["spec"]
    (server,) = pod["containers"]
    assert server["securityContext"] == {
        "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}
    assert pod["initContainers"] == [{
        "name": "download",
        "image": "img:1",
        "command": ["faiss-operator"],
        "args": ["download", "--artifact", ARTIFACT, "--out", "/var/lib/faiss-operator/artifact/current",
                 "--deadline-seconds", "1800", "--termination-log", "/dev/termination-log"],
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [{"name": "artifact", "mountPath": "/var/lib/faiss-operator/artifact", "readOnly": False}],
        "env": ENV,
        "securityContext": server["securityContext"],  # restricted, as the server's
    }]
    assert server["args"][:3] == ["serve", "--artifact", "/var/lib/faiss-operator/artifact/current"]
    assert server["volumeMounts"] == [
        {"name": "artifact", "mountPath": "/var/lib/faiss-operator/artifact", "readOnly": True}, TMP_MOUNT]
    assert _store_env(server) == []  # the server never talks to the store
    assert pod["volumes"] == [{"name": "artifact", "emptyDir": {}}, TMP_VOLUME]


def test_a_claim_artifact_has_no_init_container() -> None:
    deployment = manifests.deployment(
        make_resource(spec()), api_resource.parse_spec(spec()), revision="r1",
        artifact="pvc://faiss-artifacts/alerts/k1", search_params={}, replicas=2, image="img:1",
    )
    assert "initContainers" not in deployment["spec"]["template"]["spec"]


def test_the_cleanup_job_of_an_s3_artifact_deletes_its_prefix() -> None:
    job = manifests.cleanup_job(make_resource(spec()), target=ARTIFACT, key="k1", image="img:1", ttl_seconds=60,
                                object_store=_store(endpoint="http://store:7070"))
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert [container["command"][0], *container["args"]] == ["faiss-operator", "delete-artifact", "--artifact", ARTIFACT]
    assert container["env"] == [{"name": "AWS_ENDPOINT_URL_S3", "value": "http://store:7070"}, TMPDIR]
    assert job["spec"]["template"]["spec"]["volumes"] == [TMP_VOLUME]


def test_artifacts_in_a_bucket_live_under_index_and_artifact_key() -> None:
    assert storage.artifact_uri("s3://faiss-artifacts/prod/", "alerts", "k1") == ARTIFACT
    assert storage.artifact_uri("s3://faiss-artifacts/prod", "alerts", "k1") == ARTIFACT
    with pytest.raises(storage.StorageError, match="without '.' or '..' segments"):
        storage.artifact_uri("s3://faiss-artifacts/../x", "alerts", "k1")


def test_the_index_settings_win_field_by_field_over_the_operators() -> None:
    default = object_store.from_operator_environment(
        {"FAISS_S3_ENDPOINT": "http://default:7070", "FAISS_S3_REGION": "us-east-1",
         "FAISS_S3_CREDENTIALS_SECRET": "operator-s3"})
    assert object_store.resolve(_store(region="eu-west-1"), default) == _store(
        endpoint="http://default:7070", region="eu-west-1", credentialsSecretRef={"name": "operator-s3"})
    assert object_store.resolve(None, default) == default
    assert object_store.resolve(None, None) is None


def test_operator_settings_read_the_store_and_keep_it_out_of_the_index_layering() -> None:
    settings = operator_settings.OperatorSettings.from_environment(
        {"FAISS_S3_ENDPOINT": "http://default:7070", "FAISS_S3_ADDRESSING_STYLE": "path", "FAISS_INDEX_TYPE": "Flat"})
    assert settings.object_store == _store(endpoint="http://default:7070", addressingStyle="path")
    assert dict(settings.index_env) == {"FAISS_INDEX_TYPE": "Flat"}


def test_a_bad_operator_setting_names_the_variable() -> None:
    with pytest.raises(ValueError, match=r"FAISS_S3_ENDPOINT.*endpoint: String should match pattern"):
        object_store.from_operator_environment({"FAISS_S3_ENDPOINT": "store:7070"})


def test_a_stored_spec_whose_object_store_no_longer_parses_gives_none() -> None:
    assert object_store.of_raw_spec({"objectStore": {"endpoint": 3}}) is None
    assert object_store.of_raw_spec({"objectStore": STORE}) == _store(**STORE)
