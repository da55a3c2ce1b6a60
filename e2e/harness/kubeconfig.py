"""Kubeconfig files with the certificates embedded, so one file is all a client needs."""

from __future__ import annotations

import base64
import pathlib

import yaml

from e2e.harness import pki


def _b64(path: pathlib.Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def write(path: pathlib.Path, *, server: str, ca: pathlib.Path, client: pki.Pair, name: str) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority-data": _b64(ca)}}],
        "users": [{"name": name, "user": {
            "client-certificate-data": _b64(client.cert),
            "client-key-data": _b64(client.key),
        }}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name, "namespace": "default"}}],
        "current-context": name,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
