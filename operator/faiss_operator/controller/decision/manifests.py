"""The child objects of a FaissIndex as plain Kubernetes manifests.

Deterministic names (`<index>-<revision>`, `<index>-build-<revision>`), the labels
`faiss.dev/index` and `faiss.dev/revision`, and a controller owner reference on each; a hash of
the manifest in an annotation lets the decision see whether the live object is up to date
without comparing fields the API server fills in.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from faiss_operator.api import resource as api_resource
from faiss_operator.api import pods
from faiss_operator.api import spec as api_spec
from faiss_operator.contract import build_report, pod_args, serving_http
from faiss_operator.controller.decision import object_store as object_stores, pod_settings, programs, serving_memory, storage

Manifest = dict[str, Any]

LABEL_INDEX = "faiss.dev/index"
LABEL_REVISION = "faiss.dev/revision"
LABEL_COMPONENT = "faiss.dev/component"
LABEL_BUILD_JOB = "faiss.dev/build-job"
ANNOTATION_SPEC_HASH = "faiss.dev/spec-hash"
# On a serving Deployment: the revision record it serves (its status.revisions entry, without the
# metrics), so that a lost status can be rebuilt from the Deployments that serve.
ANNOTATION_REVISION_RECORD = "faiss.dev/revision-record"
COMPONENT_BUILD = "build"
COMPONENT_SERVING = "serving"
COMPONENT_CLEANUP = "cleanup"
BUILD_CONTAINER = "build"
SERVING_CONTAINER = "server"
MAX_NAME = 63


def _digest(text: str, length: int = 6) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def child_name(index: str, suffix: str = "") -> str:
    """`<index>-<suffix>` within 63 characters; a long index name is cut and given a hash."""
    name = f"{index}-{suffix}" if suffix else index
    if len(name) <= MAX_NAME:
        return name
    tail = f"-{suffix}" if suffix else ""
    keep = MAX_NAME - len(tail) - 7
    return f"{index[:keep].rstrip('-')}-{_digest(index)}{tail}"


def label_value(index: str) -> str:
    return child_name(index)


def job_name(index: str, revision: str, attempt: int) -> str:
    return child_name(index, f"build-{revision}" + (f"-{attempt}" if attempt else ""))


def deployment_name(index: str, revision: str) -> str:
    return child_name(index, revision)


def service_name(index: str) -> str:
    return child_name(index)


def cleanup_job_name(index: str, key: str) -> str:
    return child_name(index, f"cleanup-{key}")


def children_selector(index: str) -> dict[str, str]:
    """The labels every child of `index` carries: what to list to observe them."""
    return {LABEL_INDEX: label_value(index)}


def labels(index: str, *, component: str, revision: str | None = None) -> dict[str, str]:
    values = {
        "app.kubernetes.io/name": "faiss-index",
        "app.kubernetes.io/instance": label_value(index),
        "app.kubernetes.io/managed-by": "faiss-operator",
        LABEL_INDEX: label_value(index),
        LABEL_COMPONENT: component,
    }
    if revision is not None:
        values[LABEL_REVISION] = revision
    return values


def owner_reference(resource: api_resource.Resource) -> dict[str, Any]:
    return {
        "apiVersion": api_resource.API_VERSION,
        "kind": api_resource.KIND,
        "name": resource.name,
        "uid": resource.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _metadata(
    resource: api_resource.Resource, name: str, object_labels: dict[str, str], *, owned: bool = True
) -> Manifest:
    metadata: Manifest = {"name": name, "namespace": resource.namespace, "labels": object_labels}
    if owned:
        metadata["ownerReferences"] = [owner_reference(resource)]
    return metadata


def with_spec_hash(manifest: Manifest) -> Manifest:
    """The manifest with `faiss.dev/spec-hash` set to a hash of everything else in it."""
    digest = _digest(json.dumps(manifest, sort_keys=True, separators=(",", ":")), 16)
    metadata = manifest["metadata"]
    metadata["annotations"] = {**metadata.get("annotations", {}), ANNOTATION_SPEC_HASH: digest}
    return manifest


def _resources(requirements: api_spec.ResourceRequirements | None) -> dict[str, Any]:
    return requirements.to_wire() if requirements is not None else {}


def _claim_volumes(claims: dict[str, bool]) -> tuple[list[Manifest], list[Manifest]]:
    """Volumes and mounts for {claim: read_only}, one per claim, mounted at /mnt/pvc/<claim>."""
    volumes, mounts = [], []
    for index, (claim, read_only) in enumerate(sorted(claims.items())):
        volume = f"pvc-{index}"
        volumes.append({"name": volume, "persistentVolumeClaim": {"claimName": claim, "readOnly": read_only}})
        mounts.append({"name": volume, "mountPath": storage.ClaimPath(claim, "").mount_path, "readOnly": read_only})
    return volumes, mounts


SCRATCH_VOLUME = "scratch"
LOCAL_ARTIFACT_VOLUME = "artifact"
DOWNLOAD_CONTAINER = "download"


def _scratch_volume() -> Manifest:
    """Node-local space an s3:// artifact is built in (and its sources downloaded to) before the upload."""
    return {"name": SCRATCH_VOLUME, "emptyDir": {}}


def _scratch_mount() -> Manifest:
    return {"name": SCRATCH_VOLUME, "mountPath": programs.SCRATCH_PATH}


def _local_artifact_volume() -> Manifest:
    """Node-local space a serving pod downloads its s3:// artifact to; `serve` maps it from there."""
    return {"name": LOCAL_ARTIFACT_VOLUME, "emptyDir": {}}


def _local_artifact_mount(*, read_only: bool = False) -> Manifest:
    return {"name": LOCAL_ARTIFACT_VOLUME, "mountPath": programs.LOCAL_ARTIFACT_ROOT, "readOnly": read_only}


def _download_container(artifact: str, *, image: str, object_store: api_spec.ObjectStoreSpec | None) -> Manifest:
    """The init container that downloads and verifies an s3:// artifact before `serve` starts;
    a failure keeps the pod unready with the reason in its termination message."""
    argv = pod_args.DownloadArgs(
        artifact=artifact, out=programs.LOCAL_ARTIFACT_PATH, deadline_seconds=programs.DOWNLOAD_DEADLINE_SECONDS,
    ).argv()
    container: Manifest = {
        "name": DOWNLOAD_CONTAINER,
        "image": image,
        "command": argv[:1],
        "args": argv[1:],
        "terminationMessagePath": build_report.TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [_local_artifact_mount()],
    }
    env = object_stores.pod_env(object_store)
    if env:
        container["env"] = env
    return container


def build_job(
    resource: api_resource.Resource,
    spec: api_spec.FaissIndexSpec,
    *,
    revision: str,
    attempt: int,
    artifact: str,
    index_type: str,
    build_config: dict[str, Any],
    image: str,
    object_store: api_spec.ObjectStoreSpec | None = None,
) -> Manifest:
    """The Job that builds and evaluates one revision and reports through its termination message."""
    name = job_name(resource.name, revision, attempt)
    claims: dict[str, bool] = {}
    for uri in (spec.source.uri, spec.source.ids_uri, spec.source.metadata_uri):
        if uri is not None and uri.startswith(storage.PVC_SCHEME):
            claims[storage.parse_pvc(uri).claim] = True
    if not storage.is_object_store(artifact):
        claims[storage.parse_pvc(artifact).claim] = False
    volumes, mounts = _claim_volumes(claims)
    argv = pod_args.BuildArgs(
        source=storage.container_location(spec.source.uri),
        ids=storage.container_location(spec.source.ids_uri) if spec.source.ids_uri else None,
        metadata=storage.container_location(spec.source.metadata_uri) if spec.source.metadata_uri else None,
        out=storage.container_location(artifact),
        index_type=index_type,
        config=build_config,
        dimension=spec.dimension,
        metric=spec.metric.value,
        normalize=spec.normalize,
        k=spec.evaluation.k,
        queries=spec.evaluation.queries,
        revision=revision,
        scratch=programs.SCRATCH_PATH if storage.is_object_store(artifact) else None,
    ).argv()
    if storage.is_object_store(artifact):
        volumes, mounts = volumes + [_scratch_volume()], mounts + [_scratch_mount()]
    uris = (spec.source.uri, spec.source.ids_uri, spec.source.metadata_uri, artifact)
    env = object_stores.pod_env(object_store) if object_stores.uses_object_store(uris) else []
    pod_labels = {**labels(resource.name, component=COMPONENT_BUILD, revision=revision), LABEL_BUILD_JOB: name}
    container: Manifest = {
        "name": BUILD_CONTAINER,
        "image": image,
        "command": argv[:1],
        "args": argv[1:],
        "terminationMessagePath": build_report.TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "resources": _resources(spec.build.resources),
        "volumeMounts": mounts,
        **({"env": env} if env else {}),
    }
    pod_spec: Manifest = {"restartPolicy": "Never", "containers": [container], "volumes": volumes}
    pod_settings.apply(pod_spec, container, spec.build, selector=build_selector(resource.name))
    return with_spec_hash(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": _metadata(resource, name, labels(resource.name, component=COMPONENT_BUILD, revision=revision)),
            "spec": {
                "backoffLimit": spec.build.backoff_limit,
                "activeDeadlineSeconds": spec.build.active_deadline_seconds,
                "template": {"metadata": pod_settings.template_metadata(pod_labels, spec.build), "spec": pod_spec},
            },
        }
    )


def build_selector(index: str) -> dict[str, str]:
    return {LABEL_INDEX: label_value(index), LABEL_COMPONENT: COMPONENT_BUILD}


def serving_selector(index: str) -> dict[str, str]:
    return {LABEL_INDEX: label_value(index), LABEL_COMPONENT: COMPONENT_SERVING}


def deployment(
    resource: api_resource.Resource,
    spec: api_spec.FaissIndexSpec,
    *,
    revision: str,
    artifact: str,
    search_params: dict[str, Any],
    replicas: int,
    image: str,
    record: str | None = None,
    object_store: api_spec.ObjectStoreSpec | None = None,
    measured: serving_memory.Measured | None = None,
) -> Manifest:
    """The Deployment serving one revision's artifact; its pods join the index's one Service.

    `record` (JSON of the revision's status entry) goes into the faiss.dev/revision-record
    annotation, read back when the status was lost. `measured`: what the revision's build
    measured, from which the memory request is computed when serving.resources sets no memory."""
    init_containers: list[Manifest] = []
    if storage.is_object_store(artifact):
        volumes, mounts = [_local_artifact_volume()], [_local_artifact_mount(read_only=True)]
        init_containers.append(_download_container(artifact, image=image, object_store=object_store))
        serve_path = programs.LOCAL_ARTIFACT_PATH
    else:
        artifact_path = storage.parse_pvc(artifact)
        volumes, mounts = _claim_volumes({artifact_path.claim: True})
        serve_path = artifact_path.container_path
    workers = programs.serving_workers(_resources(spec.serving.resources))
    argv = pod_args.ServeArgs(
        artifact=serve_path, port=spec.serving.port, search_params=search_params, revision=revision,
        workers=workers,
    ).argv()
    pod_labels = labels(resource.name, component=COMPONENT_SERVING, revision=revision)
    probe_port = serving_http.PORT_NAME
    container: Manifest = {
        "name": SERVING_CONTAINER,
        "image": image,
        "command": argv[:1],
        "args": argv[1:],
        "ports": [{"name": serving_http.PORT_NAME, "containerPort": spec.serving.port, "protocol": "TCP"}],
        "readinessProbe": {
            "httpGet": {"path": serving_http.READINESS_PATH, "port": probe_port},
            "periodSeconds": 2,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": {"path": serving_http.LIVENESS_PATH, "port": probe_port},
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "resources": serving_memory.with_memory_request(
            _resources(spec.serving.resources), measured, workers=workers or 1
        ),
        "volumeMounts": mounts,
    }
    pod_spec: Manifest = {
        "containers": [container],
        "volumes": volumes,
        "terminationGracePeriodSeconds": programs.TERMINATION_GRACE_SECONDS,
    }
    pod_settings.apply(pod_spec, container, spec.serving, selector=serving_selector(resource.name))
    if init_containers:
        # The download step runs under the same restricted security context as the server.
        for init in init_containers:
            init["securityContext"] = container["securityContext"]
        pod_spec["initContainers"] = init_containers
    metadata = _metadata(resource, deployment_name(resource.name, revision), pod_labels)
    if record is not None:
        metadata["annotations"] = {ANNOTATION_REVISION_RECORD: record}
    return with_spec_hash(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": metadata,
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {**serving_selector(resource.name), LABEL_REVISION: revision}},
                "template": {"metadata": pod_settings.template_metadata(pod_labels, spec.serving), "spec": pod_spec},
            },
        }
    )


def service(resource: api_resource.Resource, spec: api_spec.FaissIndexSpec) -> Manifest:
    """One Service for the index, selecting every revision's ready serving pods."""
    return with_spec_hash(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _metadata(
                resource, service_name(resource.name), labels(resource.name, component=COMPONENT_SERVING)
            ),
            "spec": {
                "selector": serving_selector(resource.name),
                "ports": [{"name": serving_http.PORT_NAME, "port": spec.serving.port, "targetPort": serving_http.PORT_NAME}],
            },
        }
    )


def disruption_budget(resource: api_resource.Resource, spec: api_spec.FaissIndexSpec) -> Manifest | None:
    """The index's PodDisruptionBudget over all its serving pods; None when disabled."""
    budget = spec.serving.pod_disruption_budget
    if not budget.enabled:
        return None
    bound: dict[str, Any] = (
        {"minAvailable": budget.min_available}
        if budget.min_available is not None
        else {"maxUnavailable": budget.max_unavailable if budget.max_unavailable is not None else 1}
    )
    return with_spec_hash(
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": _metadata(
                resource, service_name(resource.name), labels(resource.name, component=COMPONENT_SERVING)
            ),
            "spec": {**bound, "selector": {"matchLabels": serving_selector(resource.name)}},
        }
    )


def cleanup_job(
    resource: api_resource.Resource,
    *,
    target: str,
    key: str,
    image: str,
    ttl_seconds: int,
    settings: pods.PodSettings | None = None,
    object_store: api_spec.ObjectStoreSpec | None = None,
) -> Manifest:
    """A Job that deletes one artifact directory (or s3:// prefix). Not owned: it must outlive a
    deleted index. `settings`: the build's pod settings (it mounts the same claim), None when the
    spec does not parse (the restricted defaults still apply)."""
    env: list[Manifest] = []
    volumes: list[Manifest] = []
    mounts: list[Manifest] = []
    if storage.is_object_store(target):
        argv = pod_args.DeleteArtifactArgs(artifact=target).argv()
        env = object_stores.pod_env(object_store)
    else:
        location = storage.parse_pvc(target)
        volumes, mounts = _claim_volumes({location.claim: False})
        argv = programs.remove_args(location.container_path)
    container: Manifest = {"name": "cleanup", "image": image, "command": argv[:1], "args": argv[1:], "volumeMounts": mounts}
    if env:
        container["env"] = env
    pod_spec: Manifest = {"restartPolicy": "Never", "containers": [container], "volumes": volumes}
    cleanup_labels = labels(resource.name, component=COMPONENT_CLEANUP)
    pod_settings.apply(pod_spec, container, settings, selector=cleanup_labels)
    return with_spec_hash(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": _metadata(
                resource,
                cleanup_job_name(resource.name, key),
                labels(resource.name, component=COMPONENT_CLEANUP),
                owned=False,
            ),
            "spec": {
                "backoffLimit": 3,
                "ttlSecondsAfterFinished": ttl_seconds,
                "template": {"metadata": pod_settings.template_metadata(cleanup_labels, settings), "spec": pod_spec},
            },
        }
    )
