"""A namespace ready for a story: the source claim filled with vectors, the artifacts claim made."""

from __future__ import annotations

import dataclasses
import pathlib
import uuid
from typing import Any

from kubernetes import client

from e2e.harness.waiting import wait_for
from e2e.stories import data

SOURCE_CLAIM, SOURCE_PATH = "embeddings", "vectors/v1.npy"
ARTIFACTS_CLAIM = "faiss-artifacts"  # the default spec.artifacts.uri is pvc://faiss-artifacts
SOURCE_URI = f"pvc://{SOURCE_CLAIM}/{SOURCE_PATH}"
# The API server's PodSecurity admission then refuses any pod of the story that does not meet the
# `restricted` profile: every story proves the operator's pods (and the vectors' writer) meet it.
RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest"}


def index_spec(
    fields: dict[str, Any], *, rollout: dict[str, Any], source: str = SOURCE_URI, min_recall: float = 0.5,
    **sections: Any,
) -> dict[str, Any]:
    """A FaissIndex spec over the story's vectors: `fields` (indexType, config), 100 evaluation
    queries at k 10 gated at `min_recall`, one serving replica, `rollout`, and any other `sections`."""
    return {"dimension": data.DIMENSION, **fields, "source": {"uri": source},
            "evaluation": {"k": 10, "queries": 100, "minRecall": min_recall},
            "serving": {"replicas": 1}, "rollout": rollout, **sections}


@dataclasses.dataclass(frozen=True)
class StoryNamespace:
    name: str
    source_uri: str = SOURCE_URI


def create(api: client.ApiClient, prefix: str) -> StoryNamespace:
    """A new namespace `<prefix>-<random>` enforcing Pod Security `restricted`, with its default
    ServiceAccount, claim `embeddings` holding `data.vectors()` at vectors/v1.npy, and an empty
    claim `faiss-artifacts`."""
    core = client.CoreV1Api(api)
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": RESTRICTED}})
    wait_for(lambda: core.read_namespaced_service_account("default", name), 30,
             f"service account default in {name}")
    core.create_namespaced_persistent_volume_claim(name, data.claim(ARTIFACTS_CLAIM))
    data.write_vectors(api, name, SOURCE_CLAIM, SOURCE_PATH)
    return StoryNamespace(name)


def delete(api: client.ApiClient, namespace: str) -> None:
    client.CoreV1Api(api).delete_namespace(namespace)


def claim_host_path(api: client.ApiClient, namespace: str, claim: str) -> pathlib.Path:
    """Where a claim's hostPath volume lives on the node (this machine, for the local cluster)."""
    core = client.CoreV1Api(api)
    volume = wait_for(lambda: core.read_namespaced_persistent_volume_claim(claim, namespace).spec.volume_name,
                      30, f"claim {namespace}/{claim} bound")
    pv = core.read_persistent_volume(volume)
    if pv.spec.host_path is None:
        raise AssertionError(f"volume {volume} of claim {namespace}/{claim} is not a hostPath volume")
    return pathlib.Path(pv.spec.host_path.path)


def artifact_host_path(api: client.ApiClient, namespace: str, artifact_uri: str) -> pathlib.Path:
    """The directory on this machine behind `pvc://<claim>/<path>` (hostPath volumes only)."""
    claim, _, inside = artifact_uri.removeprefix("pvc://").partition("/")
    return claim_host_path(api, namespace, claim) / inside
