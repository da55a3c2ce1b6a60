"""deploy/rbac.yaml grants exactly what the operator's code calls: nothing missing, nothing more."""

from __future__ import annotations

import pathlib
from typing import Any

import yaml

from faiss_operator.controller.runtime import handlers, kube_api

RBAC = pathlib.Path(__file__).resolve().parents[3] / "deploy" / "rbac.yaml"

Permission = tuple[str, str, str]  # (API group, resource, verb)


def documents() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(RBAC.read_text()) if doc]


def granted() -> set[Permission]:
    role = next(doc for doc in documents() if doc["kind"] == "ClusterRole")
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def used() -> set[Permission]:
    calls = {(call.group, call.resource, call.verb) for call in kube_api.CALLS}
    watched = {(group, resource, verb) for group, resource, verbs in handlers.WATCHED for verb in verbs}
    return calls | watched


def test_the_role_grants_every_call_the_operator_makes() -> None:
    assert sorted(used() - granted()) == []


def test_the_role_grants_nothing_the_operator_does_not_call() -> None:
    assert sorted(granted() - used()) == []


def test_the_calls_table_names_the_writes_of_the_write_order() -> None:
    calls = {(call.group, call.resource, call.verb) for call in kube_api.CALLS}
    assert {
        ("faiss.dev", "faissindexes/status", "patch"),
        ("faiss.dev", "faissindexes", "patch"),
        ("batch", "jobs", "patch"),
        ("apps", "deployments", "delete"),
        ("faiss.dev", "faissindexes", "get"),
    } <= calls


def test_the_operator_client_lists_nothing_a_pass_reads_the_watch_fed_caches() -> None:
    assert sorted(call for call in kube_api.CALLS if call.verb in ("list", "watch")) == []
    # ... but the FaissIndex before a finalizer change, and the Secret of an s3:// source's HEAD
    # (source_objects.py, by name, only when its answer is not cached)
    assert sorted(call for call in kube_api.CALLS if call.verb == "get") == [
        kube_api.Call("", "secrets", "get"), kube_api.Call("faiss.dev", "faissindexes", "get"),
    ]


def test_the_service_account_is_bound_to_the_role() -> None:
    kinds = {doc["kind"]: doc for doc in documents()}
    account = kinds["ServiceAccount"]["metadata"]
    assert (account["name"], account["namespace"]) == ("faiss-operator", "faiss-operator")
    binding = kinds["ClusterRoleBinding"]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "faiss-operator"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "faiss-operator", "namespace": "faiss-operator"}]
