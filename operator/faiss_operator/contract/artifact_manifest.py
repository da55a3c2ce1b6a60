"""The artifact's manifest (manifest.json): what a built index is and the checksum of every file.

The build writes it (index/artifact.py `write_manifest`, called once per artifact, after every
other file); the serving pods, the download init container and `faiss-operator verify` read it
and refuse any file that does not match. In an object store it is uploaded last, so its presence
is the commit marker of the artifact (sources/artifact_store.py). Keys are snake_case, as every
version of the builder wrote them.
"""

from __future__ import annotations

import json
from typing import Any

import pydantic

# Bumped when a reader of an older version could misread the manifest.
FORMAT_VERSION = 1


class ManifestFile(pydantic.BaseModel):
    """One file of the artifact: its size, then its sha256 (checked in that order)."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    bytes: int = pydantic.Field(ge=0)
    sha256: str = pydantic.Field(pattern=r"^[0-9a-f]{64}$")


class Evaluation(pydantic.BaseModel):
    """The build's own evaluation of the index: recall@k on `queries` held-out queries."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    k: int = pydantic.Field(ge=1)
    queries: int = pydantic.Field(ge=1)
    recall: float = pydantic.Field(ge=0, le=1)


class ArtifactManifest(pydantic.BaseModel):
    """The whole manifest, built in memory and written once.

    The index describes itself (FAISSIndex.manifest_fields: the first block); a build adds its
    revision and evaluation; `files` is filled last, from the files as written. Other fields are
    kept as given (extra="allow"): a newer builder's, which an older reader must not drop."""

    model_config = pydantic.ConfigDict(extra="allow", frozen=True)

    format_version: int = FORMAT_VERSION
    faiss_version: str
    index_type: str
    config: dict[str, Any]
    effective_config: dict[str, Any]
    factory: str | None
    nlist: int | None
    dimension: int = pydantic.Field(ge=1)
    metric: str
    normalize: bool
    num_vectors: int = pydantic.Field(ge=0)
    num_metadata: int = pydantic.Field(ge=0)
    revision: str | None = None
    evaluation: Evaluation | None = None
    files: dict[str, ManifestFile]

    def to_json(self) -> str:
        """manifest.json's text: sorted keys, indented; a build's fields only when a build set them
        (an index saved by the Python API has neither revision nor evaluation)."""
        unset = {name for name in ("revision", "evaluation") if name not in self.model_fields_set}
        return json.dumps(self.model_dump(mode="json", exclude=unset), indent=2, sort_keys=True) + "\n"
