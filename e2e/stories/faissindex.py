"""One FaissIndex seen from outside: its spec and status, its children, waits with deadlines.

Everything here reads the API server the way a user's tools do; nothing calls the operator.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
from collections.abc import Callable
from typing import Any

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from e2e.harness.waiting import wait_for

GROUP, VERSION, PLURAL, KIND = "faiss.dev", "v1alpha1", "faissindexes", "FaissIndex"
LABEL_INDEX, LABEL_REVISION, LABEL_COMPONENT = "faiss.dev/index", "faiss.dev/revision", "faiss.dev/component"
FINALIZER = "faiss.dev/cleanup"
Obj = dict[str, Any]


def body(name: str, spec: Obj, *, namespace: str | None = None, annotations: dict[str, str] | None = None) -> Obj:
    """A FaissIndex manifest (without `namespace`, left to the caller's kubectl -n / client call)."""
    metadata: Obj = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "metadata": metadata, "spec": copy.deepcopy(spec)}


def condition(obj: Obj, type_: str) -> Obj | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == type_), None)


def revision(obj: Obj, name: str | None) -> Obj | None:
    return next((r for r in (obj.get("status") or {}).get("revisions") or [] if r.get("name") == name), None)


def describe_status(obj: Obj) -> str:
    """A short line for failure messages: phase, revisions and their states, non-default conditions."""
    status = obj.get("status") or {}
    revisions = ", ".join(f"{r.get('name')}={r.get('state')}" + (f"({r.get('reason')}: {r.get('message')})"
                                                                   if r.get("reason") else "")
                          for r in status.get("revisions") or [])
    conditions = "; ".join(f"{c['type']}={c['status']} {c.get('reason')}: {c.get('message')}"
                           for c in status.get("conditions") or [])
    return (f"phase={status.get('phase')} current={status.get('currentRevision')} "
            f"candidate={status.get('candidateRevision')} rollout={status.get('rollout')} "
            f"revisions=[{revisions}] conditions=[{conditions}]")


@dataclasses.dataclass
class Index:
    """The FaissIndex `name` in `namespace`, read through `api`."""

    api: client.ApiClient
    namespace: str
    name: str

    @property
    def _custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    def get(self) -> Obj:
        obj: Obj = self._custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, self.name)
        return obj

    def exists(self) -> bool:
        try:
            self.get()
            return True
        except ApiException as error:
            if error.status == 404:
                return False
            raise

    def status(self) -> Obj:
        status: Obj = self.get().get("status") or {}
        return status

    def patch(self, patch: Obj) -> Obj:
        """A JSON merge patch of the resource (spec or metadata)."""
        obj: Obj = self._custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, self.name, patch,
            _content_type="application/merge-patch+json")
        return obj

    def annotate(self, key: str, value: str) -> None:
        self.patch({"metadata": {"annotations": {key: value}}})

    def annotations(self) -> dict[str, str]:
        return dict(self.get()["metadata"].get("annotations") or {})

    # -- waiting -------------------------------------------------------------------------
    def wait(self, check: Callable[[Obj], Any], timeout: float, what: str,
             *, alive: Callable[[], None] = lambda: None) -> Obj:
        """Wait until `check(resource)` is truthy and return the resource. `alive` is called on every
        round and may raise (e.g. the operator exited); the timeout message has the last status."""
        seen: list[Obj] = []

        def probe() -> Obj | None:
            alive()
            obj = self.get()
            seen[:] = [obj]
            return obj if check(obj) else None
        try:
            result: Obj = wait_for(probe, timeout, f"FaissIndex {self.namespace}/{self.name}: {what}")
        except AssertionError as error:
            last = describe_status(seen[0]) if seen else "(never read)"
            raise AssertionError(f"{error}; last status: {last}") from None
        return result

    def wait_phase(self, phase: str, timeout: float, *, current: str | None = None,
                   alive: Callable[[], None] = lambda: None) -> Obj:
        """Wait for `phase` (and `currentRevision == current` when given) at the latest generation."""
        def check(obj: Obj) -> bool:
            status = obj.get("status") or {}
            return (status.get("phase") == phase and status.get("observedGeneration") == obj["metadata"]["generation"]
                    and (current is None or status.get("currentRevision") == current))
        return self.wait(check, timeout, f"phase {phase}" + (f" serving {current}" if current else ""), alive=alive)

    def wait_ready(self, timeout: float, *, alive: Callable[[], None] = lambda: None) -> Obj:
        """Phase Ready, no candidate, Ready=True, at the latest generation."""
        def check(obj: Obj) -> bool:
            status = obj.get("status") or {}
            ready = condition(obj, "Ready")
            return (status.get("phase") == "Ready" and not status.get("candidateRevision")
                    and status.get("observedGeneration") == obj["metadata"]["generation"]
                    and ready is not None and ready["status"] == "True")
        return self.wait(check, timeout, "Ready with no candidate", alive=alive)

    # -- children ------------------------------------------------------------------------
    def _selector(self, **extra: str) -> str:
        labels = {LABEL_INDEX: self.name, **extra}
        return ",".join(f"{k}={v}" for k, v in labels.items())

    def jobs(self, component: str | None = None) -> list[client.V1Job]:
        extra = {LABEL_COMPONENT: component} if component else {}
        items: list[client.V1Job] = client.BatchV1Api(self.api).list_namespaced_job(
            self.namespace, label_selector=self._selector(**extra)).items
        return items

    def build_jobs(self) -> list[str]:
        """Names of the build Jobs that exist now, sorted."""
        return sorted(j.metadata.name for j in self.jobs("build"))

    def deployments(self) -> dict[str, client.V1Deployment]:
        """Serving Deployments by revision (only those not being deleted)."""
        items = client.AppsV1Api(self.api).list_namespaced_deployment(
            self.namespace, label_selector=self._selector(**{LABEL_COMPONENT: "serving"})).items
        return {d.metadata.labels[LABEL_REVISION]: d for d in items if d.metadata.deletion_timestamp is None}

    def ready_pods(self) -> dict[str, list[client.V1Pod]]:
        """Ready serving pods by revision."""
        pods = client.CoreV1Api(self.api).list_namespaced_pod(
            self.namespace, label_selector=self._selector(**{LABEL_COMPONENT: "serving"})).items
        out: dict[str, list[client.V1Pod]] = {}
        for pod in pods:
            ready = any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
            if ready and pod.metadata.deletion_timestamp is None:
                out.setdefault(pod.metadata.labels[LABEL_REVISION], []).append(pod)
        return out

    def service_address(self) -> tuple[str, int]:
        """ClusterIP and port of the index's Service (named after the index)."""
        service = client.CoreV1Api(self.api).read_namespaced_service(self.name, self.namespace)
        return service.spec.cluster_ip, int(service.spec.ports[0].port)

    def endpoint_addresses(self) -> set[str]:
        """Ready addresses in the Service's EndpointSlices."""
        slices = client.DiscoveryV1Api(self.api).list_namespaced_endpoint_slice(
            self.namespace, label_selector=f"kubernetes.io/service-name={self.name}").items
        return {a for s in slices for e in s.endpoints or [] if e.conditions and e.conditions.ready
                for a in e.addresses}

    def events(self) -> list[client.CoreV1Event]:
        items: list[client.CoreV1Event] = client.CoreV1Api(self.api).list_namespaced_event(
            self.namespace, field_selector=f"involvedObject.name={self.name},involvedObject.kind={KIND}").items
        return items


@dataclasses.dataclass(frozen=True)
class Seen:
    """One version of the FaissIndex as a watch delivered it."""

    resource_version: str
    generation: int
    phase: str | None
    current: str | None
    candidate: str | None


class PhaseRecorder:
    """Every version of one FaissIndex, from a watch in a thread, so that a status that flickers
    between two polls (Ready -> RollingBack -> Ready within 100 ms) is still seen."""

    def __init__(self, index: Index) -> None:
        self.index = index
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"watch-{index.name}", daemon=True)

    def start(self) -> PhaseRecorder:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        version: str | None = None
        objects = client.CustomObjectsApi(self.index.api)
        while not self._stop.is_set():
            stream = watch.Watch()
            kwargs: dict[str, Any] = {"field_selector": f"metadata.name={self.index.name}", "timeout_seconds": 2}
            if version:
                kwargs["resource_version"] = version
            try:
                for event in stream.stream(objects.list_namespaced_custom_object, GROUP, VERSION,
                                           self.index.namespace, PLURAL, **kwargs):
                    obj = event["object"]
                    if event["type"] == "ERROR":  # e.g. 410 Gone: list again
                        version = None
                        break
                    version = obj["metadata"]["resourceVersion"]
                    status = obj.get("status") or {}
                    with self._lock:
                        self.seen.append(Seen(version, obj["metadata"]["generation"], status.get("phase"),
                                              status.get("currentRevision"), status.get("candidateRevision")))
                    if self._stop.is_set():
                        stream.stop()
            except (ApiException, OSError, ValueError):
                version = None
                self._stop.wait(0.2)

    def caught_up(self) -> list[Seen]:
        """Wait until the watch has delivered the version the API server has now; all seen so far."""
        now = self.index.get()["metadata"]["resourceVersion"]
        wait_for(lambda: any(s.resource_version == now for s in self.snapshot()), 30,
                 f"the watch of {self.index.name} to deliver resourceVersion {now}")
        return self.snapshot()

    def snapshot(self) -> list[Seen]:
        with self._lock:
            return list(self.seen)

    def mark(self) -> int:
        """A position in what was seen, for `phases_after(..., since=)`."""
        return len(self.snapshot())

    def phases_after(self, phase: str, current: str, *, since: int = 0, passing: str | None = None) -> list[str | None]:
        """The phases of every version from the first one (at or after position `since`, and after a
        version with phase `passing` when given) with `phase` and `current` on; the watch is caught
        up with the API server first."""
        seen = self.caught_up()
        if passing is not None:
            through = next((i for i, s in enumerate(seen) if i >= since and s.phase == passing), None)
            assert through is not None, f"never seen phase {passing} since #{since}: {seen[since:]}"
            since = through
        first = next((i for i, s in enumerate(seen) if i >= since and s.phase == phase and s.current == current),
                     None)
        assert first is not None, f"never seen phase {phase} serving {current} since #{since}: {seen[since:]}"
        return [s.phase for s in seen[first:]]
