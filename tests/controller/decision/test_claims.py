"""A claim the spec mounts but the namespace lacks is said in Stalled and Degraded (claims.py)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from faiss_operator.controller.decision import observed, decide
from tests.controller import builders

ARTIFACTS_MISSING = (
    "PersistentVolumeClaim faiss-artifacts (spec.artifacts.uri) not found in namespace search: create it; the "
    "build Job and the serving pods mount it (ReadWriteMany on a multi-node cluster)"
)
BOTH_MISSING = (
    "PersistentVolumeClaim embeddings (spec.source.uri), faiss-artifacts (spec.artifacts.uri) not found in "
    "namespace search: create it; the build Job and the serving pods mount it (ReadWriteMany on a multi-node cluster)"
)
SHARED_MISSING = (
    "PersistentVolumeClaim data (spec.source.uri) not found in namespace search: create it; the build Job "
    "and the serving pods mount it (ReadWriteMany on a multi-node cluster)"
)


@dataclasses.dataclass(frozen=True)
class Case:
    reason: str
    wire: dict[str, Any]
    claims: frozenset[str] | None
    # (status, reason, message) of Stalled and of Degraded; message None = not about claims
    want: tuple[str, str, str | None]


CASES = [
    Case("claims not observed: nothing said", builders.spec(), None, ("False", "AsExpected", None)),
    Case("all claims there", builders.spec(), frozenset({"embeddings", "faiss-artifacts"}), ("False", "AsExpected", None)),
    Case("artifacts claim missing", builders.spec(), frozenset({"embeddings"}), ("True", "ClaimNotFound", ARTIFACTS_MISSING)),
    Case("both missing, in name order", builders.spec(), frozenset(), ("True", "ClaimNotFound", BOTH_MISSING)),
    Case(
        "one claim for source and artifacts, named by its first field",
        builders.spec(source={"uri": "pvc://data/v1.npy"}, artifacts={"uri": "pvc://data/artifacts"}),
        frozenset(),
        ("True", "ClaimNotFound", SHARED_MISSING),
    ),
    Case(
        "an http source needs only the artifacts claim",
        builders.spec(source={"uri": "https://example.com/v1.npy"}),
        frozenset({"faiss-artifacts"}),
        ("False", "AsExpected", None),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.reason for c in CASES])
def test_missing_claims_become_stalled_and_degraded(case: Case) -> None:
    seen = dataclasses.replace(observed.Children(), claims=case.claims)
    plan = decide.decide(builders.make_resource(case.wire), seen, (), builders.T0, settings=builders.SETTINGS)
    found = {c.type: (c.status, c.reason, c.message) for c in plan.status.conditions}
    stalled, degraded = found["Stalled"], found["Degraded"]
    assert stalled[:2] == case.want[:2]
    if case.want[2] is not None:
        assert stalled == case.want
        assert degraded == case.want
    else:
        assert degraded[1] != "ClaimNotFound"
