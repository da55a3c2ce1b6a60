"""A recording stand-in for `kube_api.KubeApi`, for the unit tests of the Kopf layer's wiring.

It keeps one FaissIndex and the applied children in memory, records every call in order, and
raises the client's own error types when a test scripts them. `StateReader` shows its objects
as caught-up watch-fed caches would (what a pass reads; reading is not a call). It proves the order and the error
handling of the writes; that they work on a real API server is proven by tests/integration.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any

from kubernetes.client import exceptions as client_errors
from kubernetes.dynamic import exceptions as dynamic_errors


def api_error(status: int, reason: str, message: str = "") -> dynamic_errors.DynamicApiError:
    """The dynamic client's exception for an HTTP status, as it raises it."""
    cause = client_errors.ApiException(status=status, reason=reason)
    cause.body = '{"message": "%s"}' % message
    return dynamic_errors.api_exception(cause)  # type: ignore[no-any-return]


@dataclasses.dataclass
class RecordingApi:
    index: dict[str, Any] | None
    children: dict[str, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)
    claims: set[str] = dataclasses.field(default_factory=set)
    terminating_claims: set[str] = dataclasses.field(default_factory=set)
    calls: list[tuple[Any, ...]] = dataclasses.field(default_factory=list)
    # method name -> errors to raise on its next calls, in order
    failures: dict[str, list[BaseException]] = dataclasses.field(default_factory=dict)
    version: int = 1
    # Secret name -> its data (base64 values), for get_secret_data
    secrets: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)

    def _fail(self, method: str) -> None:
        queued = self.failures.get(method)
        if queued:
            raise queued.pop(0)

    def _bump(self) -> dict[str, Any]:
        assert self.index is not None
        self.version += 1
        self.index["metadata"]["resourceVersion"] = str(self.version)
        return copy.deepcopy(self.index)

    def get_index(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls.append(("get_index", name))
        self._fail("get_index")
        return copy.deepcopy(self.index)

    def get_secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        self.calls.append(("get_secret_data", name))
        self._fail("get_secret_data")
        found = self.secrets.get(name)
        return None if found is None else dict(found)

    def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        self.calls.append(("apply", manifest["kind"], manifest["metadata"]["name"]))
        self._fail("apply")
        stored = self.children.setdefault(str(manifest["kind"]), [])
        name = manifest["metadata"]["name"]
        stored[:] = [child for child in stored if child["metadata"]["name"] != name] + [copy.deepcopy(dict(manifest))]
        return dict(manifest)

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        self.calls.append(("delete", kind, name))
        self._fail("delete")
        stored = self.children.get(kind, [])
        stored[:] = [child for child in stored if child["metadata"]["name"] != name]

    def patch_index(self, namespace: str, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        self.calls.append(("patch_index", copy.deepcopy(dict(patch))))
        self._fail("patch_index")
        if self.index is None:
            raise api_error(404, "Not Found")
        metadata = patch.get("metadata") or {}
        wanted = metadata.get("resourceVersion")
        if wanted is not None and wanted != self.index["metadata"]["resourceVersion"]:
            raise api_error(409, "Conflict", "the object has been modified")
        if "finalizers" in metadata:
            self.index["metadata"]["finalizers"] = list(metadata["finalizers"])
        for key, value in (metadata.get("annotations") or {}).items():
            annotations = self.index["metadata"].setdefault("annotations", {})
            if value is None:
                annotations.pop(key, None)
            else:
                annotations[key] = value
        return self._bump()

    def patch_status(self, namespace: str, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        self.calls.append(("patch_status",))
        self._fail("patch_status")
        assert self.index is not None
        self.index["status"] = {**(self.index.get("status") or {}), **copy.deepcopy(dict(patch))}
        return self._bump()


KIND_OF_PLURAL = {"jobs": "Job", "pods": "Pod", "deployments": "Deployment", "services": "Service",
                  "poddisruptionbudgets": "PodDisruptionBudget"}  # fmt: skip


@dataclasses.dataclass
class StateReader:
    """observe.Reader over `api`'s objects, as the caches hold them once the watches caught up."""

    api: RecordingApi

    def index(self, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.api.index)

    def children(self, plural: str, namespace: str, index_label: str) -> list[dict[str, Any]]:
        return copy.deepcopy(self.api.children.get(KIND_OF_PLURAL[plural], []))

    def claim(self, namespace: str, name: str) -> dict[str, Any] | None:
        if name not in self.api.claims:
            return None
        metadata: dict[str, Any] = {"name": name, "namespace": namespace}
        if name in self.api.terminating_claims:
            metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        return {"metadata": metadata}

    def namespace_terminating(self, namespace: str) -> bool:
        return False
