"""Every call the operator makes to the Kubernetes API, blocking, through the official client.

Only writes, and the read a finalizer change needs after a conflict (its first try writes over the
cached resourceVersion): a pass reads from the watch-fed caches
(caches.py). Each request is counted by verb, resource and answer (`requests`, the operator's
`faiss_operator_api_requests_total` metric).

One method per kind of call, and `CALLS` lists each (API group, resource, verb) they use, so that
the least-privilege ClusterRole in deploy/rbac.yaml can be checked against the code
(tests/controller/runtime/test_rbac.py). The methods block: the asyncio layer runs them with
`asyncio.to_thread`, so Kopf's event loop never waits on the network. They raise the client's
`kubernetes.dynamic.exceptions.DynamicApiError` (with `.status`) for API errors and
`urllib3.exceptions.HTTPError` / `OSError` for transport errors; `retryable` says which deserve
another try.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import urllib3
from kubernetes import client as kube_client
from kubernetes import config as kube_config
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic import exceptions as dynamic_errors

from faiss_operator.api import resource as api_resource

FIELD_MANAGER = "faiss-operator"
# (connect, read) seconds for each call, so a silent connection cannot hold a worker forever;
# a timeout is a transport error and retried.
REQUEST_TIMEOUT = (10.0, 60.0)
MERGE_PATCH = "application/merge-patch+json"
CONNECTIONS = 16

# (apiVersion, kind) -> (API group, resource): the kinds the operator creates, lists or deletes.
KINDS: dict[tuple[str, str], tuple[str, str]] = {
    ("batch/v1", "Job"): ("batch", "jobs"),
    ("apps/v1", "Deployment"): ("apps", "deployments"),
    ("v1", "Service"): ("", "services"),
    ("policy/v1", "PodDisruptionBudget"): ("policy", "poddisruptionbudgets"),
    ("v1", "Pod"): ("", "pods"),
    ("v1", "PersistentVolumeClaim"): ("", "persistentvolumeclaims"),
    ("v1", "Secret"): ("", "secrets"),
    (api_resource.API_VERSION, api_resource.KIND): (api_resource.GROUP, api_resource.PLURAL),
}
APPLIED_KINDS: tuple[tuple[str, str], ...] = (
    ("batch/v1", "Job"),
    ("apps/v1", "Deployment"),
    ("v1", "Service"),
    ("policy/v1", "PodDisruptionBudget"),
)


@dataclasses.dataclass(frozen=True, order=True)
class Call:
    """One permission the operator uses: RBAC's apiGroup, resource (with `/subresource`) and verb."""

    group: str
    resource: str
    verb: str


def _calls() -> tuple[Call, ...]:
    calls = {Call(api_resource.GROUP, api_resource.PLURAL, verb) for verb in ("get", "patch")}
    calls.add(Call(api_resource.GROUP, f"{api_resource.PLURAL}/status", "patch"))
    for kind in APPLIED_KINDS:
        group, plural = KINDS[kind]
        # Server-side apply is a PATCH, but one that creates the object needs `create` as well.
        calls.update(Call(group, plural, verb) for verb in ("create", "patch", "delete"))
    # A finished build pod goes once its report is recorded: it would pin the claims it mounts.
    calls.add(Call("", "pods", "delete"))
    # The Secret spec.objectStore names, for the HEAD of an s3:// source (source_objects.py):
    # read by name only when its answer is not cached, never listed or watched.
    calls.add(Call("", "secrets", "get"))
    return tuple(sorted(calls))


# What `KubeApi` calls; the Kopf layer's watches (which fill the caches) and Events are listed
# in handlers.WATCHED.
CALLS: tuple[Call, ...] = _calls()


# Told of every request: (verb, resource, answer), e.g. ("apply", "jobs", "200").
RequestCounter = Callable[[str, str, str], None]


def retryable(error: BaseException) -> bool:
    """Worth another try: a conflict, throttling, a server error or the connection failing."""
    if isinstance(error, dynamic_errors.DynamicApiError):
        status = int(getattr(error, "status", 0) or 0)
        return status in (409, 429) or status >= 500
    return isinstance(error, (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError))


def describe(error: BaseException) -> str:
    """One line for a log or condition: `409 Conflict: <the API server's message>` for API errors."""
    if isinstance(error, dynamic_errors.DynamicApiError):
        message = ""
        try:
            message = str(json.loads(error.body or "{}").get("message") or "")
        except (ValueError, AttributeError, TypeError):
            message = str(error.body or "")[:500]
        return f"{error.status} {error.reason}: {message}".rstrip(": ")
    return f"{type(error).__name__}: {error}"


def is_api_error(error: BaseException) -> bool:
    """An answer of the API server or a transport failure (not a bug of the operator)."""
    return isinstance(error, (dynamic_errors.DynamicApiError, urllib3.exceptions.HTTPError, OSError))


def is_not_found(error: BaseException) -> bool:
    return isinstance(error, dynamic_errors.NotFoundError)


def is_namespace_terminating(error: BaseException) -> bool:
    """403 from the NamespaceLifecycle admission: the namespace is being deleted and accepts no
    new object (its Status names the cause NamespaceTerminating; older servers only say so in
    the message)."""
    if not isinstance(error, dynamic_errors.DynamicApiError) or int(getattr(error, "status", 0) or 0) != 403:
        return False
    try:
        status = json.loads(error.body or "{}")
    except (ValueError, TypeError):
        return False
    causes = ((status.get("details") or {}).get("causes") or ()) if isinstance(status, dict) else ()
    if any(isinstance(c, dict) and c.get("reason") == "NamespaceTerminating" for c in causes):
        return True
    return "because it is being terminated" in str(status.get("message") or "")


class KubeApi:
    """The API server behind the operator's kubeconfig (or in-cluster ServiceAccount).

    Discovery of the kinds in `KINDS` happens once, in `__init__`, so that later calls from
    worker threads share a filled cache; LookupError when the API server lacks one of them (the
    FaissIndex CRD not installed), the client's errors when the API server cannot be reached.
    """

    def __init__(self, api_client: kube_client.ApiClient | None = None, *, requests: RequestCounter | None = None) -> None:
        self._requests = requests or (lambda verb, resource, code: None)
        if api_client is None:
            kube_config.load_config()
            configuration = kube_client.Configuration.get_default_copy()
            # One connection per worker thread (handlers.API_THREADS), not the client's default of
            # 5 per core: at a burst of writes the default pool discards and reopens connections.
            configuration.connection_pool_maxsize = CONNECTIONS
            api_client = kube_client.ApiClient(configuration)
        self._dynamic = DynamicClient(api_client)
        self._resources: dict[tuple[str, str], Any] = {}
        for api_version, kind in KINDS:
            try:
                self._resources[(api_version, kind)] = self._dynamic.resources.get(api_version=api_version, kind=kind)
            except dynamic_errors.ResourceNotFoundError:
                hint = " (install the CRD: kubectl apply -f crds/)" if kind == api_resource.KIND else ""
                raise LookupError(f"the API server does not serve {kind} {api_version}{hint}") from None

    def _resource(self, api_version: str, kind: str) -> Any:
        try:
            return self._resources[(api_version, kind)]
        except KeyError:
            raise ValueError(f"{kind} {api_version}: not a kind the operator manages") from None

    def get_index(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The FaissIndex as stored, or None when it is gone."""
        try:
            with self._counted("get", api_resource.PLURAL):
                found = self._dynamic.get(
                    self._resource(api_resource.API_VERSION, api_resource.KIND), name, namespace,
                    serializer=_as_dict, _request_timeout=REQUEST_TIMEOUT,
                )
        except dynamic_errors.NotFoundError:
            return None
        return _plain(found)

    def get_secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        """The Secret's data (base64 values, as stored), or None when it does not exist."""
        try:
            with self._counted("get", "secrets"):
                found = self._dynamic.get(self._resource("v1", "Secret"), name, namespace, _request_timeout=REQUEST_TIMEOUT)
        except dynamic_errors.NotFoundError:
            return None
        data = _plain(found).get("data") or {}
        return {str(key): str(value) for key, value in data.items()}

    @contextlib.contextmanager
    def _counted(self, verb: str, resource: str) -> Iterator[None]:
        """Count one request by its answer: the HTTP status, or `error` when none came."""
        code = "error"
        try:
            yield
            code = "200"
        except dynamic_errors.DynamicApiError as error:
            code = str(getattr(error, "status", "") or "error")
            raise
        finally:
            self._requests(verb, resource, code)

    def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply as field manager `faiss-operator`, taking over conflicting fields."""
        resource = self._resource(str(manifest["apiVersion"]), str(manifest["kind"]))
        metadata = manifest["metadata"]
        with self._counted("apply", KINDS[(str(manifest["apiVersion"]), str(manifest["kind"]))][1]):
            applied = self._dynamic.server_side_apply(
            resource,
                body=dict(manifest),
                name=metadata["name"],
                namespace=metadata.get("namespace"),
                field_manager=FIELD_MANAGER,
                force_conflicts=True,
                serializer=_as_dict,
                _request_timeout=REQUEST_TIMEOUT,
            )
        return _plain(applied)

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        """Delete in the background (a Job's pods go with it); raises NotFoundError when absent."""
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"}
        with self._counted("delete", KINDS.get((api_version, kind), ("", kind))[1]):
            self._dynamic.delete(
                self._resource(api_version, kind), name=name, namespace=namespace, body=body, _request_timeout=REQUEST_TIMEOUT
            )

    def patch_index(self, namespace: str, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        """A merge patch of the FaissIndex's metadata (annotations, finalizers)."""
        resource = self._resource(api_resource.API_VERSION, api_resource.KIND)
        with self._counted("patch", api_resource.PLURAL):
            return self._merge_patch(resource, namespace, name, dict(patch))

    def patch_status(self, namespace: str, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        """A merge patch of the FaissIndex's status subresource."""
        resource = self._resource(api_resource.API_VERSION, api_resource.KIND)
        with self._counted("patch", f"{api_resource.PLURAL}/status"):
            return self._merge_patch(resource.status, namespace, name, {"status": dict(patch)})

    def _merge_patch(self, resource: Any, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        patched = self._dynamic.patch(
            resource, body=body, name=name, namespace=namespace, content_type=MERGE_PATCH,
            field_manager=FIELD_MANAGER, serializer=_as_dict, _request_timeout=REQUEST_TIMEOUT,
        )
        return _plain(patched)


def _as_dict(_client: Any, answer: dict[str, Any]) -> dict[str, Any]:
    """The dynamic client's `serializer`: the answer's JSON as parsed, not wrapped in a
    ResourceInstance (whose wrapping and unwrapping cost 1.4 ms of CPU per Job answer against
    0.1 ms for the parse, and the operator makes three writes per new FaissIndex)."""
    return answer


def _plain(obj: Any) -> dict[str, Any]:
    """An answer as plain JSON-shaped dicts and lists (a ResourceInstance unwrapped)."""
    if isinstance(obj, dict):
        return obj
    value = obj.to_dict() if hasattr(obj, "to_dict") else obj
    return dict(json.loads(json.dumps(value, default=str)))

