"""The harness's S3 server inside the cluster's network namespace: pods reach it on the node
address with the keys from a Secret, the host reaches it too, and stopping it keeps its files."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

from e2e.harness import cluster as cluster_mod
from e2e.harness import local_store, objectstore
from e2e.harness.waiting import wait_for
from faiss_operator.sources import s3
from tests import s3_store

pytestmark = pytest.mark.integration

# A pod writes an object with boto3 (the repository's environment, which pods run) and exits 0.
PUT = ("import boto3, botocore.config, os; boto3.client('s3', config=botocore.config.Config("
       "s3={'addressing_style': 'path'})).put_object(Bucket='harness', Key='from-a-pod', Body=b'hello')")


@pytest.fixture
def store(cluster: cluster_mod.Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[objectstore.ObjectStore]:
    s3_store.require_binary(cluster.bin_dir)
    if cluster.address_block is None:
        pytest.skip("needs the local cluster's network namespace")
    started = objectstore.in_cluster(cluster, root=tmp_path_factory.mktemp("versitygw"))
    started.start()
    yield started
    started.stop()


def test_a_pod_reaches_the_store_with_keys_from_a_secret_and_its_files_outlive_a_stop(
        store: objectstore.ObjectStore, api: client.ApiClient, namespace: str) -> None:
    environment = store.environment()
    settings = s3.Settings.from_environment(environment, attempts=2)
    host_client = s3.client(settings, environ=environment)
    host_client.create_bucket(Bucket="harness")
    core = client.CoreV1Api(api)
    core.create_namespaced_secret(namespace, {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s3"},
        "stringData": {"AWS_ACCESS_KEY_ID": store.credentials.access_key_id,
                       "AWS_SECRET_ACCESS_KEY": store.credentials.secret_access_key}})
    keys = [{"name": k, "valueFrom": {"secretKeyRef": {"name": "s3", "key": k}}}
            for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")]
    core.create_namespaced_pod(namespace, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "put"},
        "spec": {"restartPolicy": "Never", "containers": [{
            "name": "put", "image": "faiss-operator:dev", "command": ["python", "-c", PUT],  # boto3 is in the image
            "env": [{"name": "AWS_ENDPOINT_URL_S3", "value": store.endpoint_url},
                    {"name": "AWS_REGION", "value": objectstore.REGION}, *keys]}]},
    })
    pod = wait_for(lambda: (p := core.read_namespaced_pod("put", namespace)).status.phase in ("Succeeded", "Failed")
                   and p, 90, "pod put finished")
    assert pod.status.phase == "Succeeded", core.read_namespaced_pod_log("put", namespace)
    assert host_client.get_object(Bucket="harness", Key="from-a-pod")["Body"].read() == b"hello"

    store.stop()
    assert not store.healthy()
    assert (store.root / "harness" / "from-a-pod").read_bytes() == b"hello"  # a POSIX directory
    store.start()
    assert host_client.get_object(Bucket="harness", Key="from-a-pod")["Body"].read() == b"hello"


def test_the_store_of_cluster_up_keeps_its_keys_and_files_and_down_stops_exactly_it(
        cluster: cluster_mod.Cluster) -> None:
    s3_store.require_binary(cluster.bin_dir)
    if cluster.address_block is None:
        pytest.skip("needs the local cluster's network namespace")
    store = local_store.start(cluster)
    try:
        assert local_store.start(cluster).record == store.record  # `up` again: the one running
        assert local_store.status(cluster.state_dir) == f"running (pid {store.record.pid}) at {store.endpoint_url}"
        environment = store.environment()
        host_client = s3.client(s3.Settings.from_environment(environment, attempts=2), environ=environment)
        host_client.create_bucket(Bucket="by-hand")
        host_client.put_object(Bucket="by-hand", Key="v.npy", Body=b"kept")
        shown = local_store.instructions(store)
        assert f"export AWS_ENDPOINT_URL_S3={store.endpoint_url} AWS_REGION={objectstore.REGION}" in shown
        assert f"AWS_SECRET_ACCESS_KEY={store.credentials.secret_access_key}" in shown

        assert local_store.stop(cluster.state_dir) is True
        assert not store.healthy() and local_store.status(cluster.state_dir) == "stopped"
        assert local_store.stop(cluster.state_dir) is False

        again = local_store.start(cluster)  # the next `up`: same keys, same files
        assert again.credentials == store.credentials
        environment = again.environment()
        host_client = s3.client(s3.Settings.from_environment(environment, attempts=2), environ=environment)
        assert host_client.get_object(Bucket="by-hand", Key="v.npy")["Body"].read() == b"kept"
    finally:
        local_store.stop(cluster.state_dir)
