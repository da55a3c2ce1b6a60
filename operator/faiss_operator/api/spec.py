"""The FaissIndex spec: what a user asks for, as pydantic models that also generate the CRD schema.

Defaults written here become schema defaults, so `kubectl get -o yaml` shows them. Cross-field
rules live twice on purpose: as CEL in `x-kubernetes-validations` (so the API server refuses a bad
spec before storing it) and as pydantic validators (so the operator, the CLI and the tests refuse
it with the same message). The index config is the index layer's typed model for the spec's
indexType (a sibling of config, so the field's validator picks the model): the spec is parsed
once, and the config is never converted again. Its schema is the union of the models' keys, and
the CEL rules generated here refuse a key of another index type.
"""

from __future__ import annotations

import copy
import re
from typing import Annotated, Any, Literal, cast

import pydantic

from faiss_operator.api import naming, pods
from faiss_operator.index import config as index_config

URI_PATTERN = r"^(pvc|file|https?|s3)://.+"
# An artifacts location: a claim (pvc://<claim>[/<prefix>]) or an object store (s3://<bucket>/<prefix>).
ARTIFACTS_URI_PATTERN = r"^(pvc://[a-z0-9]([-a-z0-9]*[a-z0-9])?(/.*)?|s3://[a-z0-9][-a-z0-9.]{1,61}[a-z0-9]/[^?#]+)$"
S3_ENDPOINT_PATTERN = r"^https?://[^/?#]+(/.*)?$"
# A Secret's name (DNS-1123 subdomain).
SECRET_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
DEFAULT_ARTIFACTS_URI = "pvc://faiss-artifacts"
MAX_STEPS = 20

Quantity = int | str
ResourceList = dict[str, Quantity]


def _config_fields_model() -> type[naming.WireModel]:
    """One optional field per key of any index type, typed and bounded as the index layer says."""
    fields: dict[str, Any] = {}
    for key in index_config.all_config_keys():
        owner = next(model for model in index_config.CONFIG_MODELS.values() if key in model.model_fields)
        info = copy.copy(owner.model_fields[key])
        owners = [name for name, model in index_config.CONFIG_MODELS.items() if key in model.model_fields]
        base: Any = info.annotation
        annotation: Any = base | None
        if info.metadata:
            annotation = Annotated[annotation, *info.metadata]
        fields[key] = (
            annotation,
            pydantic.Field(default=None, description=f"for index types: {', '.join(owners)}"),
        )
    model: type[naming.WireModel] = pydantic.create_model(
        "IndexConfigFields",
        __base__=naming.WireModel,
        __doc__="Index parameters; which keys are valid depends on indexType.",
        **fields,
    )
    return model


# The config when the spec leaves indexType to the operator's default: each key typed and bounded,
# read as the typed model of the operator's index type once that is known (`typed_config`). It is
# also the config's schema in the CRD, the same whatever indexType says.
IndexConfigFields = _config_fields_model()


def config_rules() -> list[dict[str, str]]:
    """CEL rules refusing, for each index type, the config keys that belong only to other types."""
    all_keys = {index_config.label(key, by_alias=True) for key in index_config.all_config_keys()}
    rules = []
    for name in index_config.INDEX_TYPES:
        valid = index_config.wire_config_keys(name)
        foreign = sorted(all_keys - set(valid))
        if not foreign:
            continue
        present = " || ".join(f"has(self.config.{key})" for key in foreign)
        rules.append(
            {
                "rule": f"!has(self.indexType) || self.indexType != '{name}' || !has(self.config) || !({present})",
                "message": f"config has a key that is not a parameter of indexType {name}; "
                f"valid keys for {name}: {', '.join(valid) or '(none)'}",
            }
        )
    # No rule ties nprobe to nlist: a search probes min(nprobe, nlist) lists, the one rule of
    # index/search_params.py, whether nlist is configured or chosen by the build.
    return rules


def check_config(
    index_type: str, wire_config: Any, *, dimension: int | None = None
) -> index_config.IndexConfig:
    """The spec's config parsed for `index_type` (and checked against `dimension` when given), or a
    ConfigError naming the camelCase field."""
    try:
        return index_config.parse_wire_config(index_type, wire_config, dimension=dimension)
    except pydantic.ValidationError as error:
        model = index_config.config_model_for(index_type)
        raise index_config.ConfigError(index_config.describe_validation_error(index_type, model, error)) from None


# A pvc:// path with a `..` segment could leave its claim, and one starting with '/' (pvc://c//x)
# is absolute: both refused by the API server (CEL) and here, as the operator refuses to mount them.
PVC_PARENT_SEGMENT = r"^pvc://[^/]*/((.*/)?[.][.](/|$)|/)"
_PVC_PARENT_MESSAGE = (
    "a pvc:// path may neither contain a '..' segment nor start with '/' (it must stay inside its claim)"
)


def _inside_claim(uri: str) -> str:
    if re.match(PVC_PARENT_SEGMENT, uri):
        raise ValueError(_PVC_PARENT_MESSAGE)
    return uri


def _uri_field(pattern: str) -> Any:
    return pydantic.Field(
        pattern=pattern,
        max_length=2048,
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": f"!self.matches('{PVC_PARENT_SEGMENT}')", "message": _PVC_PARENT_MESSAGE}
            ]
        },
    )


Uri = Annotated[str, _uri_field(URI_PATTERN), pydantic.AfterValidator(_inside_claim)]
ArtifactsUri = Annotated[str, _uri_field(ARTIFACTS_URI_PATTERN), pydantic.AfterValidator(_inside_claim)]


class SourceSpec(naming.WireModel):
    """Where the embeddings live: pvc://<claim>/<path> (mounted read-only), file://, http(s):// or
    s3://<bucket>/<key> (downloaded to the build's scratch; see objectStore)."""

    uri: Uri
    ids_uri: Uri | None = None
    metadata_uri: Uri | None = None


class ArtifactsSpec(naming.WireModel):
    """Where built revisions are stored: pvc://<claim>[/<prefix>] or s3://<bucket>/<prefix>; each
    revision gets a directory (a prefix in a bucket, its manifest written last)."""

    uri: ArtifactsUri = DEFAULT_ARTIFACTS_URI


class SecretReference(naming.WireModel):
    """A Secret in the FaissIndex's namespace."""

    name: Annotated[str, pydantic.Field(max_length=253, pattern=SECRET_NAME_PATTERN)]


class ObjectStoreSpec(naming.WireModel):
    """How the pods reach s3:// sources and artifacts; a field left out takes the operator's
    setting (Helm values objectStore.*), else the SDK's default (AWS S3, the pod's identity)."""

    endpoint: Annotated[str | None, pydantic.Field(
        max_length=2048, pattern=S3_ENDPOINT_PATTERN,
        description="an S3-compatible store's URL (Ceph RGW, GCS interoperability, R2, MinIO); unset: AWS S3",
    )] = None
    region: Annotated[str | None, pydantic.Field(max_length=64, pattern=r"^[a-z0-9-]+$")] = None
    addressing_style: Literal["auto", "path", "virtual"] | None = pydantic.Field(
        default=None, description="path for most S3-compatible stores; auto (the SDK's choice) by default",
    )
    credentials_secret_ref: SecretReference | None = pydantic.Field(
        default=None,
        description="a Secret with the keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; without one the pods "
        "use the SDK's default chain (IRSA / workload identity through the pods' service account)",
    )


class EvaluationSpec(naming.WireModel):
    """The build's evaluation and the gates a revision must pass before it takes traffic."""

    k: Annotated[int, pydantic.Field(ge=1, le=1024)] = 10
    queries: Annotated[int, pydantic.Field(ge=1, le=100_000)] = 1000
    min_recall: Annotated[float | None, pydantic.Field(gt=0, le=1)] = None
    max_p99_latency_ms: Annotated[float | None, pydantic.Field(gt=0)] = None


class ResourceRequirements(naming.WireModel):
    """Container resources as in a Pod spec (quantities such as 500m or 2Gi)."""

    requests: ResourceList | None = None
    limits: ResourceList | None = None


class BuildSpec(pods.PodSettings):
    """The build Job of each revision (and the cleanup Jobs that remove old artifacts); changes
    here apply from the next build Job on, never make a new revision."""

    image: Annotated[str | None, pydantic.Field(max_length=1024, description="defaults to the operator's image")] = None
    resources: ResourceRequirements | None = None
    active_deadline_seconds: Annotated[int, pydantic.Field(ge=1)] = 3600
    backoff_limit: Annotated[int, pydantic.Field(ge=0, le=20)] = 1


IntOrPercent = Annotated[
    int | Annotated[str, pydantic.Field(pattern=r"^[0-9]+%$")], pydantic.Field(description="a number of pods or a percentage")
]


def _bound_rule(field: str) -> dict[str, pydantic.JsonValue]:
    """int-or-string has no pattern in a structural schema: CEL refuses a string that is not N%."""
    return {
        "rule": f"!has(self.{field}) || type(self.{field}) == int || self.{field}.matches('^[0-9]+%$')",
        "message": f"podDisruptionBudget.{field}: a number of pods or a percentage such as 25%",
    }


class DisruptionBudgetSpec(naming.WireModel):
    """The PodDisruptionBudget over the index's serving pods (all revisions): at most one of
    maxUnavailable and minAvailable (neither: maxUnavailable 1); enabled false makes none."""

    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.maxUnavailable) || !has(self.minAvailable)",
                    "message": "podDisruptionBudget: set maxUnavailable or minAvailable, not both",
                },
                _bound_rule("maxUnavailable"),
                _bound_rule("minAvailable"),
            ]
        }
    )

    enabled: bool = True
    max_unavailable: IntOrPercent | None = None
    min_available: IntOrPercent | None = None

    @pydantic.model_validator(mode="after")
    def _one_bound(self) -> DisruptionBudgetSpec:
        if self.max_unavailable is not None and self.min_available is not None:
            raise ValueError("podDisruptionBudget: set maxUnavailable or minAvailable, not both")
        return self


class ServingSpec(pods.PodSettings):
    """The serving Deployment of each revision; changes here update it in place (no new revision)."""

    replicas: Annotated[int, pydantic.Field(ge=1, le=1000)] = 2
    image: Annotated[str | None, pydantic.Field(max_length=1024, description="defaults to the operator's image")] = None
    resources: ResourceRequirements | None = None
    port: Annotated[int, pydantic.Field(ge=1, le=65535)] = 8080
    pod_disruption_budget: DisruptionBudgetSpec = pydantic.Field(default_factory=DisruptionBudgetSpec)


class CanaryStep(naming.WireModel):
    """Send `weight` percent of the replicas to the candidate, then wait.

    Without pauseSeconds the rollout waits at this step until annotated faiss.dev/promote=true.
    """

    weight: Annotated[int, pydantic.Field(ge=1, le=100)]
    pause_seconds: Annotated[int | None, pydantic.Field(ge=0)] = None


class AnalysisSpec(naming.WireModel):
    """Live checks at each step: the stored query sample sent to candidate and stable pods."""

    min_recall: Annotated[float | None, pydantic.Field(gt=0, le=1, description="defaults to evaluation.minRecall")] = (
        None
    )
    max_p99_latency_ms: Annotated[
        float | None, pydantic.Field(gt=0, description="defaults to evaluation.maxP99LatencyMs")
    ] = None
    max_latency_ratio: Annotated[
        float | None, pydantic.Field(ge=1, description="candidate p99 may be at most this times the stable p99")
    ] = None
    failure_limit: Annotated[int, pydantic.Field(ge=0, le=100)] = 0


class RolloutSpec(naming.WireModel):
    """How a new revision takes traffic from the serving one."""

    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.steps) || self.steps.map(s, s.weight).isSorted() "
                    "&& self.steps.all(s, self.steps.exists_one(t, t.weight == s.weight))",
                    "message": "rollout.steps: weights must be strictly increasing (e.g. 10, 25, 50)",
                }
            ]
        }
    )

    steps: Annotated[list[CanaryStep], pydantic.Field(max_length=MAX_STEPS)] = pydantic.Field(
        default_factory=list,
        description="canary steps; none means the candidate goes to all replicas once ready and analysed",
    )
    analysis: AnalysisSpec = pydantic.Field(default_factory=AnalysisSpec)
    auto_rollback: bool = True
    on_failure: Literal["Abort", "Pause"] = pydantic.Field(
        default="Abort", description="without autoRollback: Abort removes the candidate, Pause holds it for an admin"
    )
    progress_deadline_seconds: Annotated[int, pydantic.Field(ge=1)] = 600
    scale_down_delay_seconds: Annotated[int, pydantic.Field(ge=0)] = 30
    revision_history_limit: Annotated[int, pydantic.Field(ge=0, le=50)] = 3

    @pydantic.field_validator("steps")
    @classmethod
    def _weights_increase(cls, steps: list[CanaryStep]) -> list[CanaryStep]:
        weights = [step.weight for step in steps]
        if any(later <= earlier for earlier, later in zip(weights, weights[1:])):
            raise ValueError(f"weights must be strictly increasing (e.g. 10, 25, 50); got {weights}")
        return steps


class FaissIndexSpec(naming.WireModel):
    """A FAISS index: what to build it from, how to prove it, serve it and roll it out."""

    model_config = pydantic.ConfigDict(
        json_schema_extra={"x-kubernetes-validations": cast(pydantic.JsonValue, config_rules())}
    )

    dimension: Annotated[int, pydantic.Field(ge=1, le=65536)]
    metric: index_config.Metric = index_config.Metric.L2
    normalize: bool = pydantic.Field(
        default=False, description="L2-normalise vectors (cosine = InnerProduct + normalize)"
    )
    index_type: index_config.IndexTypeName | None = pydantic.Field(
        default=None,
        description="Flat | IVF | IVFPQ | HNSW | OPQ+HNSW; defaults to the operator's FAISS_INDEX_TYPE, else HNSW",
    )
    config: index_config.IndexConfig | IndexConfigFields | None = None  # type: ignore[valid-type]
    source: SourceSpec
    artifacts: ArtifactsSpec = pydantic.Field(default_factory=ArtifactsSpec)
    object_store: ObjectStoreSpec | None = None
    evaluation: EvaluationSpec = pydantic.Field(default_factory=EvaluationSpec)
    build: BuildSpec = pydantic.Field(default_factory=BuildSpec)
    serving: ServingSpec = pydantic.Field(default_factory=ServingSpec)
    rollout: RolloutSpec = pydantic.Field(default_factory=RolloutSpec)
    paused: bool = pydantic.Field(default=False, description="hold the rollout where it is (builds still run)")

    @pydantic.field_validator("config", mode="plain", json_schema_input_type=IndexConfigFields | None)
    @classmethod
    def _config_of_index_type(cls, config: Any, info: pydantic.ValidationInfo) -> Any:
        # The model is picked by indexType, a sibling field: dimension and indexType come before
        # config, so they are in info.data when they are valid. A field validator, not a model
        # one: it runs even when a later field (source, evaluation) is wrong, so that every
        # problem of a spec is reported at once. A bad value raises pydantic's own error at its
        # camelCase location; a key of another type or a dimension it cannot divide, a ValueError.
        index_type = info.data.get("index_type")
        if isinstance(config, index_config.CONFIG_TYPES):  # built in Python
            if index_type is not None and config.index_type != index_type:
                raise ValueError(f"a config of index type {config.index_type} given with indexType {index_type}")
            return config
        if config is None or isinstance(config, IndexConfigFields):
            return config
        if index_type is None:  # unset (the operator's default decides) or itself invalid
            return IndexConfigFields.model_validate(config, by_alias=True, by_name=False)
        try:
            return index_config.parse_wire_config(index_type, config, dimension=info.data.get("dimension"))
        except index_config.ConfigError as error:
            raise ValueError(str(error)) from None

    @pydantic.field_serializer("config")
    def _config_as_written(self, config: index_config.IndexConfig | naming.WireModel | None) -> Any:
        # The keys the user wrote, camelCase: defaults of the typed model are not part of the spec
        # (the CRD's schema has none for config, so the API server stores it as written).
        if isinstance(config, index_config.CONFIG_TYPES):
            return config.to_wire(explicit_only=True)
        return None if config is None else config.to_wire()

    def typed_config(self, index_type: str) -> index_config.IndexConfig:
        """The config as the typed model of `index_type`: the spec's own when indexType is set
        (and is `index_type`), else the keys given read for the operator's default type. Raises
        ConfigError naming the camelCase field."""
        if isinstance(self.config, index_config.CONFIG_TYPES) and self.config.index_type == index_type:
            return self.config
        return check_config(index_type, {} if self.config is None else self.config.to_wire())
