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
from collections.abc import Mapping, Sequence
from typing import Any, NewType

from faiss_operator.api import resource as api_resource
from faiss_operator.api import spec as api_spec
from faiss_operator.api import status as api_status
from faiss_operator.controller.decision import conditions, observed, storage
from faiss_operator.controller.decision import settings as operator_settings
from faiss_operator.index import config as index_config
from faiss_operator.index import settings as index_settings

Revision = api_status.Revision
ArtifactKey = NewType("ArtifactKey", str)

HASH_LENGTH = 10
S3_SCHEME = "s3://"


class SourceUnavailableError(api_resource.SpecError):
    """An s3:// object of the source could not be described by its store, so the revision it
    makes is unknown: nothing new is built, what serves is held (the spec itself may be fine)."""

    reason = conditions.SOURCE_UNAVAILABLE


@dataclasses.dataclass(frozen=True)
class DesiredRevision:
    """The revision the spec asks for, with everything needed to build and serve it."""

    name: Revision
    artifact_key: ArtifactKey
    index_type: index_config.IndexTypeName
    config: index_config.IndexConfig
    builder_image: str
    artifact: str  # pvc://<claim>/<prefix>/<index>/<artifact key>
    # The identity of each s3:// source object, by spec field ({} for a source without one).
    source_objects: Mapping[str, str] = dataclasses.field(default_factory=dict)

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
    spec: api_spec.FaissIndexSpec,
    settings: operator_settings.OperatorSettings,
    *,
    index_name: str,
    source_objects: Mapping[str, observed.SourceObject] | None = None,
    history: Sequence[api_status.RevisionStatus] = (),
) -> DesiredRevision:
    """The revision of `spec`, its config completed from the operator's defaults: resolved once
    per reconcile, and everything later steps need from the spec's URIs checked here.

    Raises SpecError when the config cannot describe an index of the effective type (for
    example a key of another type when the type comes from the operator's FAISS_INDEX_TYPE), or
    when a pvc:// URI of the spec leaves its claim (`pvc://x/../../y`); SourceUnavailableError
    when the store could not describe an s3:// object of the source (`source_objects`, the HEADs
    runtime/source_objects.py made: an object's version id or ETag is part of the artifact key,
    so a new upload under the same key is a new revision).
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
            by_alias=True,
        )
    except index_config.ConfigError as error:
        message = str(error)
        raise api_resource.SpecError(f"spec.{message}" if message.startswith("config") else message) from None
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
    # Only for s3:// sources, so that the revisions of every other source keep their names.
    identities = source_identities(spec.source, source_objects)
    if identities and not _made_before_identities(ArtifactKey(short_hash(artifact_fields)), identities, history):
        artifact_fields["sourceObjects"] = identities
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
        source_objects=identities,
    )


def _made_before_identities(
    key: ArtifactKey, identities: Mapping[str, str], history: Sequence[api_status.RevisionStatus]
) -> bool:
    # A revision in history made by an operator version that did not read the objects' identity
    # (artifact key without it, nothing recorded) stays this spec's revision, so an upgrade
    # rebuilds nothing; lifecycle records the identity seen then on it, so an overwrite after the
    # upgrade is still a new revision.
    return any(
        entry.artifact_key == key and entry.source_objects in (None, dict(identities)) for entry in history
    )


def source_uris(source: api_spec.SourceSpec) -> dict[str, str]:
    """The s3:// URIs of `source`, by wire field (`source.uri`, `source.idsUri`, ...)."""
    fields = {"source.uri": source.uri, "source.idsUri": source.ids_uri, "source.metadataUri": source.metadata_uri}
    return {field: uri for field, uri in fields.items() if uri is not None and uri.startswith(S3_SCHEME)}


def source_identities(
    source: api_spec.SourceSpec, source_objects: Mapping[str, observed.SourceObject] | None
) -> dict[str, str]:
    """The identity of each s3:// object of `source` (field -> `versionId:...` or `etag:...`);
    {} when not observed. Raises SourceUnavailableError naming every object the store did not
    describe."""
    if source_objects is None:
        return {}
    identities: dict[str, str] = {}
    problems: list[str] = []
    for field, uri in source_uris(source).items():
        found = source_objects.get(uri)
        if found is None or found.problem is not None:
            problems.append(f"spec.{field} {uri}: {found.problem if found is not None else 'not described by the store yet'}")
        elif found.identity is not None:
            identities[field] = found.identity
    if problems:
        raise SourceUnavailableError("; ".join(problems))
    return identities


def _check_location(field: str, uri: str) -> None:
    try:
        storage.container_location(uri)
    except storage.StorageError as error:
        raise storage.StorageError(f"spec.{field}: {error}") from None
