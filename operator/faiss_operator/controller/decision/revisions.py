"""Revisions: a short stable hash of the fields that define an index.

Two hashes per revision. The artifact key covers what shapes the built files (data, dimension,
metric, index type and build-time parameters, the evaluation sample, and spec.build.image when the
user sets it, never the operator's own image, so an operator upgrade keeps every revision); the
revision name adds the search-time parameters (efSearch, nprobe). So a change of search-time
parameters only gives a new revision with the same artifact key, which reuses the built files.
Serving-only fields (replicas, resources, serving image, port) are in neither.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, NewType

from faiss_operator.api import resource as api_resource
from faiss_operator.api import spec as api_spec
from faiss_operator.api import status as api_status
from faiss_operator.controller.decision import settings as operator_settings
from faiss_operator.controller.decision import storage
from faiss_operator.index import config as index_config
from faiss_operator.index import settings as index_settings

Revision = api_status.Revision
ArtifactKey = NewType("ArtifactKey", str)

HASH_LENGTH = 10


@dataclasses.dataclass(frozen=True)
class DesiredRevision:
    """The revision the spec asks for, with everything needed to build and serve it."""

    name: Revision
    artifact_key: ArtifactKey
    index_type: index_config.IndexTypeName
    config: index_config.IndexConfig
    builder_image: str
    artifact: str  # pvc://<claim>/<prefix>/<index>/<artifact key>

    @property
    def build_config(self) -> dict[str, Any]:
        """Snake_case config for the build Job's --config: the build-time parameters and the
        revision's search-time ones, so that the Job evaluates recall and latency as it will serve."""
        values = self.config.model_dump(mode="json")
        return {k: v for k, v in values.items() if k != "index_type" and v is not None}

    @property
    def search_params(self) -> dict[str, Any]:
        """Snake_case search-time parameters, for the serving pods."""
        return self.config.search_fields()


def short_hash(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:HASH_LENGTH]


def desired_revision(
    spec: api_spec.FaissIndexSpec, settings: operator_settings.OperatorSettings, *, index_name: str
) -> DesiredRevision:
    """The revision of `spec`, its config completed from the operator's defaults: resolved once
    per reconcile, and everything later steps need from the spec's URIs checked here.

    Raises SpecError when the config cannot describe an index of the effective type (for
    example a key of another type when the type comes from the operator's FAISS_INDEX_TYPE), or
    when a pvc:// URI of the spec leaves its claim (`pvc://x/../../y`).
    """
    # FAISS_CONFIG_FILE is left out: reading a file has no place in a pure decision.
    env = {k: v for k, v in settings.index_env.items() if k != index_settings.ENV_CONFIG_FILE}
    try:
        index_type = spec.index_type or index_settings.resolve_config(env=env, config_file=None).index_type
        # The spec's keys outrank the operator's environment (FAISS_CONFIG_*): layered once here.
        resolved = index_settings.resolve_config(
            index_type=index_type,
            config=spec.typed_config(index_type).explicit_fields(),
            env=env,
            config_file=None,
        )
    except index_config.ConfigError as error:
        raise api_resource.SpecError(_wire_message(str(error))) from None
    builder_image = spec.build.image or settings.image
    artifact_fields = {
        "dimension": spec.dimension,
        "metric": spec.metric.value,
        "normalize": spec.normalize,
        "indexType": resolved.index_type,
        "config": resolved.config.build_fields(),
        "source": spec.source.to_wire(),
        "evaluation": {"k": spec.evaluation.k, "queries": spec.evaluation.queries},
    }
    # Only an image the user chose defines the index: the operator's own image (the default
    # builder) changes with every operator upgrade, which must not rebuild every index.
    if spec.build.image is not None:
        artifact_fields["builderImage"] = spec.build.image
    artifact_key = ArtifactKey(short_hash(artifact_fields))
    name = Revision(short_hash({"artifact": artifact_key, "search": resolved.config.search_fields()}))
    try:
        for field, uri in (
            ("source.uri", spec.source.uri),
            ("source.idsUri", spec.source.ids_uri),
            ("source.metadataUri", spec.source.metadata_uri),
        ):
            if uri is not None:
                _check_location(field, uri)
        artifact = storage.artifact_uri(spec.artifacts.uri, index_name, artifact_key)
    except storage.StorageError as error:
        raise api_resource.SpecError(str(error)) from None
    return DesiredRevision(
        name=name,
        artifact_key=artifact_key,
        index_type=resolved.index_type,
        config=resolved.config,
        builder_image=builder_image,
        artifact=artifact,
    )


def _check_location(field: str, uri: str) -> None:
    try:
        storage.container_location(uri)
    except storage.StorageError as error:
        raise storage.StorageError(f"spec.{field}: {error}") from None


def _wire_message(message: str) -> str:
    # An error of the layering (a FAISS_CONFIG_* value of the operator's environment, merged
    # under the spec's keys in the index layer's snake_case) names the spec's field it fills.
    for key in index_config.all_config_keys():
        message = message.replace(f"config.{key}:", f"config.{index_config.label(key, by_alias=True)}:")
    return f"spec.{message}" if message.startswith("config") else message
