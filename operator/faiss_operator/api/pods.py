"""The pod settings production users set on the pods the operator makes (`build`, `serving`).

The shapes are Kubernetes' own (core/v1 PodSpec and SecurityContext), camelCase on the wire, so
what a user knows from a Deployment applies as written. The security contexts are overrides:
each field set here replaces the operator's `restricted` default of the same name
(controller/decision/pod_settings.py), every other default stays. Affinity and label selectors are the
API server's to check, so they are kept as given (x-kubernetes-preserve-unknown-fields).

The operator's own labels select its pods (Services, Deployments, Jobs); a pod label under
`faiss.dev/` or one of the `app.kubernetes.io/` keys it sets is refused here and by a CEL rule,
so a user's label can never take a pod away from its Deployment.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pydantic

from faiss_operator.api import naming

MAX_TOLERATIONS = 32
MAX_CONSTRAINTS = 16
MAX_PULL_SECRETS = 16
RESERVED_LABEL_PREFIX = "faiss.dev/"
RESERVED_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/managed-by",
)
_RESERVED_MESSAGE = (
    f"podLabels may not set the operator's own labels ({RESERVED_LABEL_PREFIX}*, {', '.join(RESERVED_LABELS)}): "
    "they select the pods"
)
_RESERVED_RULE = (
    f"self.all(k, !k.startsWith('{RESERVED_LABEL_PREFIX}') && !(k in [{', '.join(repr(k) for k in RESERVED_LABELS)}]))"
)
# A Kubernetes object name (DNS subdomain), for priority classes, service accounts and secrets.
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"

FreeForm = Annotated[dict[str, Any], pydantic.Field(json_schema_extra={"x-kubernetes-preserve-unknown-fields": True})]
ObjectName = Annotated[str, pydantic.Field(max_length=253, pattern=NAME_PATTERN)]


class Toleration(naming.WireModel):
    key: Annotated[str | None, pydantic.Field(max_length=253)] = None
    operator: Literal["Exists", "Equal"] | None = None
    value: Annotated[str | None, pydantic.Field(max_length=253)] = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = None


class TopologySpreadConstraint(naming.WireModel):
    """core/v1 TopologySpreadConstraint. Without labelSelector the operator fills in the labels
    of this index's pods of the same kind (its serving pods, or its build pods)."""

    max_skew: Annotated[int, pydantic.Field(ge=1)]
    topology_key: Annotated[str, pydantic.Field(min_length=1, max_length=316)]
    when_unsatisfiable: Literal["DoNotSchedule", "ScheduleAnyway"]
    label_selector: FreeForm | None = None
    min_domains: Annotated[int | None, pydantic.Field(ge=1)] = None
    match_label_keys: list[str] | None = None
    node_affinity_policy: Literal["Honor", "Ignore"] | None = None
    node_taints_policy: Literal["Honor", "Ignore"] | None = None


class LocalObjectReference(naming.WireModel):
    name: ObjectName


class SeccompProfile(naming.WireModel):
    type: Literal["RuntimeDefault", "Localhost", "Unconfined"]
    localhost_profile: str | None = None


class Capabilities(naming.WireModel):
    add: list[str] | None = None
    drop: list[str] | None = None


class SELinuxOptions(naming.WireModel):
    user: str | None = None
    role: str | None = None
    type: str | None = None
    level: str | None = None


class Sysctl(naming.WireModel):
    name: Annotated[str, pydantic.Field(min_length=1)]
    value: str


class PodSecurityContext(naming.WireModel):
    """core/v1 PodSecurityContext fields that override the operator's restricted defaults."""

    run_as_user: Annotated[int | None, pydantic.Field(ge=0)] = None
    run_as_group: Annotated[int | None, pydantic.Field(ge=0)] = None
    run_as_non_root: bool | None = None
    fs_group: Annotated[int | None, pydantic.Field(ge=0)] = None
    fs_group_change_policy: Literal["OnRootMismatch", "Always"] | None = None
    supplemental_groups: list[Annotated[int, pydantic.Field(ge=0)]] | None = None
    seccomp_profile: SeccompProfile | None = None
    se_linux_options: SELinuxOptions | None = None
    sysctls: list[Sysctl] | None = None


class SecurityContext(naming.WireModel):
    """core/v1 SecurityContext (the container's) fields that override the restricted defaults."""

    run_as_user: Annotated[int | None, pydantic.Field(ge=0)] = None
    run_as_group: Annotated[int | None, pydantic.Field(ge=0)] = None
    run_as_non_root: bool | None = None
    allow_privilege_escalation: bool | None = None
    read_only_root_filesystem: bool | None = None
    privileged: bool | None = None
    capabilities: Capabilities | None = None
    seccomp_profile: SeccompProfile | None = None
    se_linux_options: SELinuxOptions | None = None


def _no_reserved_labels(labels: dict[str, str] | None) -> dict[str, str] | None:
    for key in labels or {}:
        if key.startswith(RESERVED_LABEL_PREFIX) or key in RESERVED_LABELS:
            raise ValueError(f"{_RESERVED_MESSAGE}; got {key!r}")
    return labels


PodLabels = Annotated[
    dict[str, str] | None,
    pydantic.Field(json_schema_extra={"x-kubernetes-validations": [{"rule": _RESERVED_RULE, "message": _RESERVED_MESSAGE}]}),
    pydantic.AfterValidator(_no_reserved_labels),
]


class PodSettings(naming.WireModel):
    """Where and as whom the pods run: the PodSpec fields of the same names, and the pod
    template's labels and annotations."""

    node_selector: dict[str, str] | None = None
    tolerations: Annotated[list[Toleration] | None, pydantic.Field(max_length=MAX_TOLERATIONS)] = None
    affinity: FreeForm | None = pydantic.Field(default=None, description="core/v1 Affinity, as in a PodSpec")
    topology_spread_constraints: Annotated[
        list[TopologySpreadConstraint] | None, pydantic.Field(max_length=MAX_CONSTRAINTS)
    ] = None
    priority_class_name: ObjectName | None = None
    runtime_class_name: ObjectName | None = pydantic.Field(
        default=None, description="the RuntimeClass the pods run under (gVisor, Kata, ...), as in a PodSpec"
    )
    service_account_name: ObjectName | None = None
    image_pull_secrets: Annotated[
        list[LocalObjectReference] | None, pydantic.Field(max_length=MAX_PULL_SECRETS)
    ] = None
    pod_annotations: dict[str, str] | None = None
    pod_labels: PodLabels = None
    pod_security_context: PodSecurityContext | None = pydantic.Field(
        default=None, description="overrides the operator's restricted defaults field by field"
    )
    security_context: SecurityContext | None = pydantic.Field(
        default=None, description="the container's; overrides the restricted defaults field by field"
    )
