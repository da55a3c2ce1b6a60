"""The GitOps health checks judge a FaissIndex as the API server stores it.

Each sample of tests/gitops is written to a real API server the way the operator writes it (the
spec, changed until its generation is the sample's, then the status through the status
subresource) and read back; the Argo CD Lua check and kstatus must give the stored object the
health they give the sample. This catches what a round trip can change: pruning by the CRD's
status schema, defaulting of the spec, integers turned into other numbers.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from faiss_operator.api import resource as api_resource
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from e2e.harness.waiting import wait_for
from tests.gitops import argocd_lua, health_samples, kstatus_tool

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = (health_samples.ARGOCD / "health.lua").read_text()
NAMES = sorted(n for n in health_samples.SAMPLES if not n.startswith("progressing_created"))


@pytest.fixture(scope="module")
def crd(api: client.ApiClient) -> None:
    extensions = client.ApiextensionsV1Api(api)
    body = yaml.safe_load((ROOT / "crds" / "faissindexes.faiss.dev.yaml").read_text())
    try:
        extensions.create_custom_resource_definition(body)
    except ApiException as error:
        if error.status != 409:
            raise
    served = client.CustomObjectsApi(api)

    def ready() -> bool:
        try:
            served.list_cluster_custom_object(api_resource.GROUP, api_resource.VERSION, api_resource.PLURAL)
            return True
        except ApiException:
            return False

    wait_for(ready, 30, "the FaissIndex API served")


@pytest.fixture(scope="module")
def kstatus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return kstatus_tool.build(tmp_path_factory.mktemp("kstatus"))


def _store(api: client.ApiClient, namespace: str, sample: dict[str, Any], name: str) -> dict[str, Any]:
    objects = client.CustomObjectsApi(api)
    args = (api_resource.GROUP, api_resource.VERSION, namespace, api_resource.PLURAL)
    generation = sample["metadata"]["generation"]
    body = {"apiVersion": sample["apiVersion"], "kind": sample["kind"], "metadata": {"name": name}}
    # Earlier specs differ in replicas only; the last one is the sample's, at the sample's generation.
    for step in range(generation):
        spec = copy.deepcopy(sample["spec"])
        if step < generation - 1:
            spec["serving"] = {**spec.get("serving", {}), "replicas": 10 + step}
        if step == 0:
            objects.create_namespaced_custom_object(*args, {**body, "spec": spec})
        else:
            objects.patch_namespaced_custom_object(*args, name, {"spec": spec})
    objects.patch_namespaced_custom_object_status(*args, name, {"status": sample["status"]})
    stored: dict[str, Any] = objects.get_namespaced_custom_object(*args, name)
    assert stored["metadata"]["generation"] == generation
    return stored


def test_stored_objects_get_the_health_of_their_samples(
    api: client.ApiClient, crd: None, namespace: str, kstatus: Path
) -> None:
    samples = {name: health_samples.SAMPLES[name].build() for name in NAMES}
    stored = {name: _store(api, namespace, body, name.lower().replace("_", "-")) for name, body in samples.items()}
    for name in NAMES:
        assert argocd_lua.run_health(SCRIPT, stored[name]) == argocd_lua.run_health(SCRIPT, samples[name]), name
    judged_stored = kstatus_tool.verdicts(kstatus, [stored[n] for n in NAMES])
    judged_samples = kstatus_tool.verdicts(kstatus, [samples[n] for n in NAMES])
    assert [(v["status"], v["message"]) for v in judged_stored] == [
        (v["status"], v["message"]) for v in judged_samples
    ]
    # The status survives the round trip whole: nothing the checks read was pruned.
    for name in NAMES:
        assert stored[name]["status"] == samples[name]["status"], name


def test_a_new_faissindex_reads_back_with_the_default_status_and_is_in_progress(
    api: client.ApiClient, crd: None, namespace: str, kstatus: Path
) -> None:
    """Before the operator's first status write: the CRD's status default makes kstatus (Flux) say
    InProgress rather than Current; Argo CD says Progressing."""
    sample = health_samples.SAMPLES["progressing_createdAsStored"].build()
    body = {k: v for k, v in sample.items() if k != "status"}
    body["metadata"] = {"name": "fresh"}
    objects = client.CustomObjectsApi(api)
    args = (api_resource.GROUP, api_resource.VERSION, namespace, api_resource.PLURAL)
    objects.create_namespaced_custom_object(*args, body)
    stored = objects.get_namespaced_custom_object(*args, "fresh")
    assert stored["status"] == sample["status"]
    (verdict,) = kstatus_tool.verdicts(kstatus, [stored])
    assert verdict == {
        "name": "fresh",
        "status": "InProgress",
        "message": "FaissIndex generation is 1, but latest observed generation is 0",
    }
    assert argocd_lua.run_health(SCRIPT, stored) == {
        "status": "Progressing",
        "message": "Waiting for the operator to observe generation 1",
    }
