"""What every pod the operator makes carries: Pod Security `restricted` by default, and the
pod settings the user set for `build` or `serving`.

The defaults pass the API server's PodSecurity admission at `restricted` (runAsNonRoot,
seccompProfile RuntimeDefault, all capabilities dropped, no privilege escalation) and go
further with a read-only root filesystem: the programs write only to the emptyDir mounted at
/tmp (TMPDIR: Python's temporary files, `serve`'s metrics directory) and to their volumes. The
UID and GID are the image's (Dockerfile: 65532), set explicitly so that an image whose USER is a
name still passes the kubelet's runAsNonRoot check; fsGroup makes the artifacts claim writable by
that user. Each field the user sets in podSecurityContext / securityContext replaces the default
of the same name; the rest stay.
"""

from __future__ import annotations

from typing import Any

from faiss_operator.api import pods

Manifest = dict[str, Any]

UID = 65532
GID = 65532
TMP_VOLUME = "tmp"
TMP_PATH = "/tmp"
# Scratch space only: the build's staging and downloads go beside the artifact on its claim.
TMP_SIZE_LIMIT = "256Mi"

POD_SECURITY_CONTEXT: Manifest = {
    "runAsNonRoot": True,
    "runAsUser": UID,
    "runAsGroup": GID,
    "fsGroup": GID,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY_CONTEXT: Manifest = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}


def pod_security_context(settings: pods.PodSettings | None) -> Manifest:
    override = settings.pod_security_context if settings is not None else None
    return {**POD_SECURITY_CONTEXT, **(override.to_wire() if override is not None else {})}


def container_security_context(settings: pods.PodSettings | None) -> Manifest:
    override = settings.security_context if settings is not None else None
    return {**CONTAINER_SECURITY_CONTEXT, **(override.to_wire() if override is not None else {})}


def scratch_volume() -> tuple[Manifest, Manifest]:
    """The emptyDir at /tmp and its mount: where the programs write outside their volumes."""
    return (
        {"name": TMP_VOLUME, "emptyDir": {"sizeLimit": TMP_SIZE_LIMIT}},
        {"name": TMP_VOLUME, "mountPath": TMP_PATH},
    )


def scratch_env() -> list[Manifest]:
    return [{"name": "TMPDIR", "value": TMP_PATH}]


def apply(
    pod_spec: Manifest, container: Manifest, settings: pods.PodSettings | None, *, selector: dict[str, str]
) -> None:
    """Complete `pod_spec` and its one `container` (both changed in place) with the security
    defaults, the scratch volume and the user's settings. `selector`: the labels of the pods of
    this kind, for a topology spread constraint given without a labelSelector."""
    volume, mount = scratch_volume()
    pod_spec["volumes"] = [*pod_spec.get("volumes", ()), volume]
    container["volumeMounts"] = [*container.get("volumeMounts", ()), mount]
    container["env"] = [*container.get("env", ()), *scratch_env()]
    container["securityContext"] = container_security_context(settings)
    pod_spec["securityContext"] = pod_security_context(settings)
    if settings is None:
        return
    if settings.node_selector:
        pod_spec["nodeSelector"] = dict(settings.node_selector)
    if settings.tolerations:
        pod_spec["tolerations"] = [t.to_wire() for t in settings.tolerations]
    if settings.affinity:
        pod_spec["affinity"] = dict(settings.affinity)
    if settings.topology_spread_constraints:
        pod_spec["topologySpreadConstraints"] = [
            {"labelSelector": {"matchLabels": dict(selector)}, **c.to_wire()} for c in settings.topology_spread_constraints
        ]
    if settings.priority_class_name:
        pod_spec["priorityClassName"] = settings.priority_class_name
    if settings.runtime_class_name:
        pod_spec["runtimeClassName"] = settings.runtime_class_name
    if settings.service_account_name:
        pod_spec["serviceAccountName"] = settings.service_account_name
    if settings.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [s.to_wire() for s in settings.image_pull_secrets]


def template_metadata(labels: dict[str, str], settings: pods.PodSettings | None) -> Manifest:
    """The pod template's metadata: the user's labels under the operator's (which select the
    pods; the spec refuses a user label of the same key), and the user's annotations."""
    metadata: Manifest = {"labels": {**((settings.pod_labels or {}) if settings else {}), **labels}}
    if settings is not None and settings.pod_annotations:
        metadata["annotations"] = dict(settings.pod_annotations)
    return metadata
