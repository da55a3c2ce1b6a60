"""An invalid spec does not freeze what runs: the revision in flight (or serving) is held.

When the spec cannot be acted on, no new revision is adopted or built, but the rollout already
under way still meets its deadlines, admin annotations still act, and the serving children stay
in sync. That needs the parts of the spec that drive a rollout (serving, rollout, evaluation,
paused) to be valid; the others (what defines an index) are then not needed, because the held
revision is read from the status. When a part that drives the rollout is itself invalid, or
nothing is in flight or serving, `hold` returns None and the decision only reports the problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pydantic

from faiss_operator.api import spec as api_spec
from faiss_operator.api import status as api_status
from faiss_operator.controller.decision import revisions
from faiss_operator.controller.decision import settings as operator_settings

# The parts of the spec a rollout in flight runs on.
DRIVING_FIELDS = frozenset({"serving", "rollout", "evaluation", "paused"})
# Stand-ins for the parts that define an index, never used while a revision is held (no build).
_STAND_INS: dict[str, Any] = {"dimension": 1, "source": {"uri": "file:///held"}}


def hold(
    raw: Mapping[str, Any], status: api_status.FaissIndexStatus, settings: operator_settings.OperatorSettings
) -> tuple[api_spec.FaissIndexSpec, revisions.DesiredRevision] | None:
    """The spec to run the held revision with, and that revision as the desired one; None when
    the invalid spec leaves nothing to run on."""
    entry = status.revision(status.candidate_revision) or status.revision(status.current_revision)
    if entry is None:
        return None
    driving = {k: v for k, v in raw.items() if k in DRIVING_FIELDS}
    config = entry.typed_config()
    if config is None:  # no longer readable (another operator version, a hand edit)
        return None
    try:
        spec = api_spec.FaissIndexSpec.model_validate({**driving, **_STAND_INS})
    except pydantic.ValidationError:
        return None
    desired = revisions.DesiredRevision(
        name=entry.name,
        artifact_key=revisions.ArtifactKey(entry.artifact_key),
        index_type=config.index_type,
        config=config,
        builder_image=settings.image,
        artifact=entry.artifact,
        source_objects=entry.source_objects or {},
    )
    return spec, desired
