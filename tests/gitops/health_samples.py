"""FaissIndex objects at the points of a life that GitOps tools judge, with the health each must get.

Each sample is reached through the operator's own decision (`tests/controller`'s simulated cluster
feeds `decide()` its own plans), so its status is exactly what the operator writes: phase, rollout,
revisions and the eight conditions with the operator's reasons and messages. The committed copies
under `integrations/argocd/faiss.dev/FaissIndex/testdata/` are written by

    .venv/bin/python -m tests.gitops.health_samples

and read by both the Argo CD health check tests and the kstatus tests; the tests also judge the
statuses the decision writes *now*, so a change of message in the controller cannot hide behind a
stale copy. Samples captured from a real operator can be added beside them (same layout).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from faiss_operator.api import crd

from tests.controller import scenarios
from tests.controller.builders import NAME, NAMESPACE, Cluster, at, passing, report, revision_of, spec, with_config

ROOT = Path(__file__).resolve().parents[2]
ARGOCD = ROOT / "integrations" / "argocd" / "faiss.dev" / "FaissIndex"
TESTDATA = ARGOCD / "testdata"


@dataclasses.dataclass(frozen=True)
class Sample:
    """`argocd`: the health status Argo CD must show; `deciding`: the condition whose message it shows
    (None: a fixed message of the script); `kstatus`: what sigs.k8s.io/cli-utils kstatus computes."""

    build: Callable[[], dict[str, Any]]
    argocd: str
    deciding: str | None
    kstatus: str


def _object(cluster: Cluster, *, status: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "faiss.dev/v1alpha1",
        "kind": "FaissIndex",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "generation": cluster.generation},
        "spec": cluster.wire,
    }
    if status:
        body["status"] = cluster.status.to_wire()
    return body


def _spec(**overrides: Any) -> dict[str, Any]:
    wire = spec()
    for key, value in overrides.items():
        wire[key] = {**wire.get(key, {}), **value} if isinstance(value, dict) else value
    return wire


R2 = revision_of(with_config(spec(), m=32))


def _created() -> dict[str, Any]:
    return _object(Cluster(spec()), status=False)


def _created_as_stored() -> dict[str, Any]:
    """A new FaissIndex as the API server returns it before the operator's first status write:
    the CRD defaults status to {observedGeneration: 0} and its schema adds phase Pending."""
    body = _object(Cluster(spec()), status=False)
    body["status"] = {**crd.STATUS_DEFAULT, "phase": "Pending"}
    return body


def _first_deploy() -> dict[str, Any]:
    cluster = scenarios.building()
    cluster.finish_job(revision_of(cluster.wire), message=report())
    cluster.reconcile(at(10))
    return _object(cluster)


def _first_build_failed() -> dict[str, Any]:
    cluster = scenarios.building()
    cluster.finish_job(revision_of(cluster.wire), failed="ValueError: dimension mismatch")
    cluster.reconcile(at(10))
    return _object(cluster)


def _spec_changed_not_observed() -> dict[str, Any]:
    cluster = scenarios.serving()
    cluster.wire = scenarios.second_spec(cluster)
    cluster.generation += 1
    return _object(cluster)


def _spec_paused() -> dict[str, Any]:
    cluster = scenarios.canary_analysed()
    cluster.wire = {**cluster.wire, "paused": True}
    cluster.generation += 1
    cluster.reconcile(at(110))
    return _object(cluster)


def _awaiting_promotion() -> dict[str, Any]:
    cluster = scenarios.canary_step0(_spec(rollout={"steps": [{"weight": 25}, {"weight": 50, "pauseSeconds": 0}]}))
    cluster.reconcile(at(55), (passing(R2, 0, at(52)),))
    return _object(cluster)


def _paused_on_failure() -> dict[str, Any]:
    cluster = scenarios.canary_step0(_spec(rollout={"autoRollback": False, "onFailure": "Pause"}))
    cluster.reconcile(at(55), (passing(R2, 0, at(52), recall=0.5),))
    return _object(cluster)


def _migration_gate_failed() -> dict[str, Any]:
    cluster = scenarios.candidate_building()
    cluster.finish_job(R2, message=report(recall=0.6))
    cluster.reconcile(at(40))
    return _object(cluster)


def _migrated() -> dict[str, Any]:
    return _object(scenarios.promoted_and_scaled_down())


def _rolling_back() -> Cluster:
    cluster = scenarios.promoted_and_scaled_down()
    cluster.annotations["faiss.dev/rollback"] = "previous"
    cluster.reconcile(at(240))
    return cluster


def _rollback_stalled() -> dict[str, Any]:
    cluster = _rolling_back()
    cluster.ready(revision_of(spec()), 1)
    cluster.reconcile(at(240 + 300))  # the test spec's progressDeadlineSeconds
    return _object(cluster)


def _serving_with_a_replica_down() -> dict[str, Any]:
    cluster = scenarios.serving()
    cluster.ready(revision_of(cluster.wire), 3)
    cluster.reconcile(at(25))
    return _object(cluster)


SAMPLES: dict[str, Sample] = {
    "progressing_created": Sample(_created, "Progressing", None, "Current"),
    "progressing_createdAsStored": Sample(_created_as_stored, "Progressing", None, "InProgress"),
    "progressing_firstBuild": Sample(lambda: _object(scenarios.building()), "Progressing", "Reconciling", "InProgress"),
    "progressing_firstDeploy": Sample(_first_deploy, "Progressing", "Reconciling", "InProgress"),
    "healthy_serving": Sample(lambda: _object(scenarios.serving()), "Healthy", "Ready", "Current"),
    "healthy_replicaDown": Sample(_serving_with_a_replica_down, "Healthy", "Ready", "Current"),
    "progressing_specNotObserved": Sample(_spec_changed_not_observed, "Progressing", None, "InProgress"),
    "progressing_migrationBuild": Sample(
        lambda: _object(scenarios.candidate_building()), "Progressing", "Reconciling", "InProgress"
    ),
    "progressing_canaryStep": Sample(
        lambda: _object(scenarios.canary_analysed()), "Progressing", "Reconciling", "InProgress"
    ),
    "healthy_migrated": Sample(_migrated, "Healthy", "Ready", "Current"),
    "progressing_rollingBack": Sample(lambda: _object(_rolling_back()), "Progressing", "Reconciling", "InProgress"),
    "suspended_specPaused": Sample(_spec_paused, "Suspended", "Progressing", "InProgress"),
    "suspended_awaitingPromotion": Sample(_awaiting_promotion, "Suspended", "Progressing", "InProgress"),
    "degraded_firstBuildFailed": Sample(_first_build_failed, "Degraded", "Stalled", "Failed"),
    "degraded_migrationGateFailed": Sample(_migration_gate_failed, "Degraded", "Stalled", "Failed"),
    "degraded_pausedOnFailure": Sample(_paused_on_failure, "Degraded", "Stalled", "Failed"),
    "degraded_rollbackStalled": Sample(_rollback_stalled, "Degraded", "Stalled", "Failed"),
}


FIXED_MESSAGES = {
    "progressing_created": "Waiting for the operator to observe the FaissIndex",
    "progressing_createdAsStored": "Waiting for the operator to observe generation 1",
    "progressing_specNotObserved": "Waiting for the operator to observe generation 2",
}


def expected_health(name: str, body: dict[str, Any], samples: dict[str, Sample] | None = None,
                    fixed: dict[str, str] | None = None) -> dict[str, str]:
    """Argo CD's `healthStatus` for the sample `name` (of `samples`, default SAMPLES; `fixed`: the
    messages where no condition decides, default FIXED_MESSAGES) whose object is `body`."""
    sample = (SAMPLES if samples is None else samples)[name]
    if sample.deciding is None:
        return {"status": sample.argocd, "message": (FIXED_MESSAGES if fixed is None else fixed)[name]}
    condition = next(c for c in body["status"]["conditions"] if c["type"] == sample.deciding)
    return {"status": sample.argocd, "message": condition["message"]}


def write(directory: Path = ARGOCD) -> list[Path]:
    """The samples as `testdata/<name>.yaml` and Argo CD's `health_test.yaml` listing them and the
    samples captured from a real operator (tests/gitops/captured_samples.py), which stay as they are."""
    from tests.gitops import captured_samples

    (directory / "testdata").mkdir(parents=True, exist_ok=True)
    written, tests = [], []
    for name, sample in SAMPLES.items():
        body = sample.build()
        path = directory / "testdata" / f"{name}.yaml"
        path.write_text(yaml.safe_dump(body, sort_keys=False))
        written.append(path)
        tests.append({"healthStatus": expected_health(name, body), "inputPath": f"testdata/{name}.yaml"})
    for name, sample in captured_samples.CAPTURED.items():
        body = sample.build()
        tests.append({"healthStatus": expected_health(name, body, captured_samples.CAPTURED,
                                                      captured_samples.FIXED_MESSAGES),
                      "inputPath": f"testdata/{captured_samples.PREFIX}{name}.yaml"})
    index = directory / "health_test.yaml"
    index.write_text(yaml.safe_dump({"tests": tests}, sort_keys=False, width=120))
    return [*written, index]


if __name__ == "__main__":
    for path in write():
        print(path.relative_to(ROOT), file=sys.stderr)
