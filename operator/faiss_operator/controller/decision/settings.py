"""Operator-wide settings the decision depends on, read once from the operator's environment.

A frozen value passed into the pure decision, never read from os.environ inside it, so that the
same inputs always give the same plan.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from faiss_operator.api import spec as api_spec
from faiss_operator.controller.decision import object_store

ENV_IMAGE = "FAISS_OPERATOR_IMAGE"
DEFAULT_IMAGE = "ghcr.io/faiss-operator/faiss-operator:0.1.0"


@dataclasses.dataclass(frozen=True)
class OperatorSettings:
    """What a resource leaves out, the operator fills in from here."""

    image: str = DEFAULT_IMAGE
    # The operator's environment for the index layer's layering (FAISS_INDEX_TYPE, FAISS_CONFIG_*).
    index_env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # How often the Kopf layer should look again while waiting for a measurement or a timer.
    analysis_interval_seconds: float = 10.0
    # Finished cleanup Jobs remove themselves (and their pods, which mount the artifacts claim
    # and would keep a deleted claim Terminating) after this long.
    cleanup_ttl_seconds: int = 60
    # Where s3:// sources and artifacts are, for the indexes that do not say (FAISS_S3_*).
    object_store: api_spec.ObjectStoreSpec | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> OperatorSettings:
        index_env = {
            k: v for k, v in environ.items()
            if k.startswith("FAISS_") and k != ENV_IMAGE and k not in object_store.OPERATOR_ENV
        }
        return cls(
            image=environ.get(ENV_IMAGE, DEFAULT_IMAGE), index_env=index_env,
            object_store=object_store.from_operator_environment(environ),
        )
