"""A small conditions library in the metav1.Condition shape, with every reason a named constant.

`set_condition` keeps lastTransitionTime when the status did not change, so that a status built
afresh on every reconcile still compares equal to the stored one when nothing happened.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from faiss_operator.api import status as api_status

READY = "Ready"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"
INDEX_BUILT = "IndexBuilt"
RECALL_TARGET_MET = "RecallTargetMet"
LATENCY_TARGET_MET = "LatencyTargetMet"
RECONCILING = "Reconciling"  # kstatus
STALLED = "Stalled"  # kstatus
ORDER = (READY, PROGRESSING, DEGRADED, INDEX_BUILT, RECALL_TARGET_MET, LATENCY_TARGET_MET, RECONCILING, STALLED)

TRUE: api_status.ConditionStatus = "True"
FALSE: api_status.ConditionStatus = "False"
UNKNOWN: api_status.ConditionStatus = "Unknown"

# Reasons.
SERVING = "Serving"
NOT_SERVING = "NotServing"
NO_SERVING_REVISION = "NoServingRevision"
BUILDING = "Building"
DEPLOYING = "Deploying"
CANARY_STEP = "CanaryStep"
PROMOTING = "Promoting"
PAUSED = "Paused"
ROLLING_BACK = "RollingBack"
IDLE = "Idle"
BUILT = "Built"
ARTIFACT_REUSED = "ArtifactReused"
BUILD_FAILED = "BuildFailed"
ABOVE_THRESHOLD = "AboveThreshold"
BELOW_THRESHOLD = "BelowThreshold"
WITHIN_LIMIT = "WithinLimit"
ABOVE_LIMIT = "AboveLimit"
NO_TARGET = "NoTarget"
NOT_MEASURED = "NotMeasured"
REPLICAS_UNAVAILABLE = "ReplicasUnavailable"
SERVING_OOM_KILLED = "ServingOOMKilled"
REVISION_FAILED = "RevisionFailed"
REVISION_ROLLED_BACK = "RevisionRolledBack"
ROLLOUT_PAUSED_ON_FAILURE = "PausedOnFailure"
ROLLBACK_STALLED = "RollbackStalled"
INVALID_SPEC = "InvalidSpec"
SOURCE_UNAVAILABLE = "SourceUnavailable"  # an s3:// source object the store did not describe (HEAD failed)
AS_EXPECTED = "AsExpected"
KEPT_SERVING = "KeptServing"  # a revision that left keeps the only ready pods (keep_serving.py)


def get(conditions: Sequence[api_status.Condition], type_: str) -> api_status.Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def set_condition(
    conditions: Sequence[api_status.Condition],
    *,
    type_: str,
    status: api_status.ConditionStatus,
    reason: str,
    message: str,
    now: datetime.datetime,
    generation: int,
) -> list[api_status.Condition]:
    """`conditions` with `type_` set; lastTransitionTime moves only when the status changes."""
    previous = get(conditions, type_)
    since = previous.last_transition_time if previous is not None and previous.status == status else now
    updated = api_status.Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=since,
        observed_generation=generation,
    )
    others = [c for c in conditions if c.type != type_]
    return sorted([*others, updated], key=_position)


def _position(condition: api_status.Condition) -> tuple[int, str]:
    return (ORDER.index(condition.type) if condition.type in ORDER else len(ORDER), condition.type)
