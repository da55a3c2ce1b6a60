"""The process kubelet resolves a container's environment the way the kubelet does."""

from __future__ import annotations

import base64

import pytest

from e2e.harness.kubelet import containers, envvars

POD = {"metadata": {"name": "web-1", "namespace": "search", "uid": "u1", "labels": {"app": "web"}},
       "spec": {"nodeName": "process-node", "serviceAccountName": "default"},
       "status": {"podIP": "127.10.0.2", "hostIP": "127.0.0.1"}}
OBJECTS: dict[tuple[str, str], dict[str, object]] = {("configmap", "conf"): {"data": {"mode": "fast"}},
           ("secret", "creds"): {"data": {"token": base64.b64encode(b"t0k").decode()}}}


def lookup(kind: str, name: str) -> dict[str, object] | None:
    return OBJECTS.get((kind, name))


@pytest.mark.parametrize(("text", "expected"), [
    ("$(A)-$(B)", "1-2"),
    ("$$(A)", "$(A)"),
    ("$(MISSING)", "$(MISSING)"),
    ("$A", "$A"),
    ("$$", "$"),
])
def test_references_expand_escape_or_stay(text: str, expected: str) -> None:
    assert envvars.expand(text, {"A": "1", "B": "2"}) == expected


def test_values_come_from_fields_configmaps_secrets_and_earlier_variables() -> None:
    container = {"name": "c", "env": [
        {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
        {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "conf", "key": "mode"}}},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
        {"name": "URL", "value": "http://$(IP):8080/$(APP)"},
    ]}
    env = envvars.resolve(container, POD, lookup, {"PATH": "/bin"})
    assert env == {"PATH": "/bin", "IP": "127.10.0.2", "APP": "web", "MODE": "fast", "TOKEN": "t0k",
                   "URL": "http://127.10.0.2:8080/web"}


def test_missing_reference_is_a_clear_error_unless_optional() -> None:
    missing = {"name": "c", "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k"}}}]}
    with pytest.raises(envvars.EnvError, match="configmap 'nope' not found"):
        envvars.resolve(missing, POD, lookup, {})
    missing["env"][0]["valueFrom"]["configMapKeyRef"]["optional"] = True  # type: ignore[index]
    assert envvars.resolve(missing, POD, lookup, {}) == {}


def test_command_without_an_image_entrypoint_is_refused_with_the_reason() -> None:
    assert containers.argv_of({"image": "ghcr.io/x/faiss-operator:1.0", "args": ["serve", "$(P)"]}, {"P": "8"}) \
        == ["faiss-operator", "serve", "8"]
    with pytest.raises(containers.ConfigError, match="no known entrypoint"):
        containers.argv_of({"image": "nginx:1.27"}, {})
