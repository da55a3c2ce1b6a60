"""A claim the spec mounts but the namespace lacks is said in Stalled and Degraded (claims.py)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from faiss_operator.controller.decision import observed, decide
from tests.controller import builders, scenarios

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


def _pod(name: str, claim: str, *, component: str) -> dict[str, Any]:
    labels = {"faiss.dev/component": component}
    volumes = [{"name": "artifacts", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}]
    return {"metadata": {"name": name, "labels": labels}, "spec": {"volumes": volumes}, "status": {"phase": "Running"}}


def test_a_claim_deleted_under_a_serving_index_names_itself_and_the_pods_that_hold_it() -> None:
    cluster = scenarios.serving()
    cluster.serving_pods = [
        _pod("alerts-r1-b", "faiss-artifacts", component="serving"),
        _pod("alerts-r1-a", "faiss-artifacts", component="serving"),
    ]
    seen = dataclasses.replace(
        cluster.children(),
        claims=frozenset({"embeddings", "faiss-artifacts"}),
        terminating_claims=frozenset({"faiss-artifacts"}),
    )
    plan = decide.decide(cluster.resource(), seen, (), builders.at(30), settings=builders.SETTINGS)
    found = {c.type: (c.status, c.reason, c.message) for c in plan.status.conditions}
    message = (
        "PersistentVolumeClaim faiss-artifacts (spec.artifacts.uri, held by pods alerts-r1-a, alerts-r1-b) is being "
        "deleted in namespace search: it stays Terminating until no pod mounts it, then its files go; recreate the "
        "claim under another name and point the spec at it, or delete the FaissIndex"
    )
    assert found["Degraded"] == ("True", "ClaimTerminating", message)
    assert found["Stalled"] == ("True", "ClaimTerminating", message)
    assert found["Ready"][0] == "True"  # what serves keeps serving while the claim is held
    assert plan.status.phase == "Degraded"
    assert [a for a in plan.actions if type(a).__name__ == "Delete"] == []  # nothing is taken down for it


def test_a_deleted_claim_no_pod_of_the_index_mounts_says_so() -> None:
    seen = observed.Children(claims=frozenset({"embeddings", "faiss-artifacts"}), terminating_claims=frozenset({"embeddings"}))
    plan = decide.decide(builders.make_resource(builders.spec()), seen, (), builders.T0, settings=builders.SETTINGS)
    degraded = next(c for c in plan.status.conditions if c.type == "Degraded")
    assert degraded.reason == "ClaimTerminating"
    assert degraded.message.startswith(
        "PersistentVolumeClaim embeddings (spec.source.uri, no pod of this index mounts it) is being deleted"
    )
