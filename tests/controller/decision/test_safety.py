"""Stories of the decisions that must be safe to act on: a lost status, annotations seen twice
or with a write lost, rollback targets, inputs that must not raise, deadlines and leaks.

Each starts from a cluster reached through the decision itself and states the whole outcome.
`R1` (the first spec), `R2` (m changed) and `R3` (m changed again) stand for revision hashes.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from faiss_operator.api import resource as api_resource
from faiss_operator.api import status as api_status
from faiss_operator.controller.decision import actions, decide, manifests
from faiss_operator.index import config as index_config

from tests.controller import scenarios
from tests.controller.builders import (
    SETTINGS,
    Cluster,
    Summary,
    at,
    artifact_key_of,
    passing,
    relabel,
    relabel_summary,
    report,
    revision_of,
    spec,
    summarize,
    with_config,
)

R1 = revision_of(spec())
R2 = revision_of(with_config(spec(), m=32))
R3 = revision_of(with_config(spec(), m=48))
LABELS = {R1: "R1", R2: "R2", R3: "R3"}


def _label(value: Any) -> Any:
    return relabel(value, LABELS)


def labelled(plan: actions.Plan) -> Summary:
    return relabel_summary(summarize(plan), LABELS)


def warnings(plan: actions.Plan) -> list[tuple[str, str]]:
    return [(e.reason, _label(e.message)) for e in plan.events if e.type == "Warning"]


def replicas_asked(plan: actions.Plan, revision: str) -> int | None:
    name = manifests.deployment_name("alerts", revision)
    for action in plan.actions:
        if isinstance(action, actions.Apply) and action.kind == "Deployment" and action.name == name:
            return int(action.manifest["spec"]["replicas"])
    return None


def deleted(plan: actions.Plan) -> list[tuple[str, str]]:
    return [(a.kind, _label(a.name)) for a in plan.actions if isinstance(a, actions.Delete)]


def promote_through(cluster: Cluster, revision: str, start: float) -> float:
    """Ready every replica and pass every analysis of `revision` until it is Active; the time then."""
    now = start
    while cluster.status.current_revision != revision:
        assert now < start + 1000, "the rollout did not finish"
        cluster.ready_all()
        step = cluster.status.rollout.step if cluster.status.rollout is not None else 0
        cluster.reconcile(at(now), (passing(revision, step, at(now)),))
        now += 31
    return now


# --- a lost or unreadable status never touches what serves ------------------------------------


def test_a_wiped_status_adopts_the_serving_deployment_and_touches_nothing() -> None:
    cluster = scenarios.serving()
    cluster.status = api_status.FaissIndexStatus()
    plan = cluster.reconcile(at(30))
    assert labelled(plan) == Summary((), "Ready", "R1", None, None, (("R1", "Active"),))
    assert [r for r, _ in warnings(plan)] == ["StatusRepaired"]
    entry = plan.status.revisions[0]
    assert entry.promoted_at == at(30) and entry.reason == "StatusRepaired"
    # The next pass has nothing left to repair.
    assert cluster.reconcile(at(31)).events == ()


def test_a_wiped_status_during_a_canary_keeps_the_stable_and_the_canary_serving() -> None:
    cluster = scenarios.canary_step0()
    cluster.status = api_status.FaissIndexStatus()
    plan = cluster.reconcile(at(55))
    assert deleted(plan) == []
    assert replicas_asked(plan, R1) in (None, 4)
    assert plan.status.current_revision == R1
    # The canary (which never took all traffic) resumes as the spec's candidate, from its first step.
    assert plan.status.candidate_revision == R2 and plan.status.rollout is not None
    assert plan.status.rollout.mode == "Canary"


def test_an_unreadable_status_is_read_as_lost_and_what_serves_is_kept() -> None:
    cluster = scenarios.serving()
    body = {
        "metadata": {"name": "alerts", "namespace": "search", "generation": 1, "finalizers": [api_resource.FINALIZER]},
        "spec": cluster.wire,
        "status": {"revisions": "not a list", "phase": "Ready"},
    }
    resource = api_resource.Resource.from_body(body)
    assert resource.status == api_status.FaissIndexStatus()
    plan = decide.decide(resource, cluster.children(), (), at(30), settings=SETTINGS)
    assert deleted(plan) == [] and plan.status.current_revision == R1


def test_a_status_with_fields_this_operator_does_not_know_is_read_not_dropped() -> None:
    cluster = scenarios.serving()
    wire = cluster.status.to_wire()
    wire["fieldOfANewerOperator"] = {"x": 1}
    wire["revisions"][0]["annotatedBy"] = "another tool"
    wire["rollout"] = None
    body = {"metadata": {"name": "alerts", "generation": 1}, "spec": cluster.wire, "status": wire}
    assert api_resource.Resource.from_body(body).status == cluster.status


def test_a_status_written_by_the_previous_operator_reads_its_revision_configs_typed() -> None:
    # The previous operator version stored each revision's effective config as an untyped
    # camelCase dict: that very form reads as the typed config of the revision's index type.
    cluster = scenarios.serving()
    wire = cluster.status.to_wire()
    wire["revisions"][0]["config"] = {"m": 16, "efConstruction": 100, "efSearch": 32}
    body = {"metadata": {"name": "alerts", "generation": 1}, "spec": cluster.wire, "status": wire}
    status = api_resource.Resource.from_body(body).status
    assert status == cluster.status
    assert status.revisions[0].typed_config() == index_config.HNSWConfig(m=16, ef_construction=100, ef_search=32)
    assert status.to_wire() == wire


def test_a_revision_config_that_no_longer_reads_is_kept_as_stored_and_keeps_serving() -> None:
    cluster = scenarios.serving()
    stored = {"m": 16, "efConstruction": 100, "efSerch": 32, "aKeyOfANewerOperator": True}
    wire = cluster.status.to_wire()
    wire["revisions"][0]["config"] = stored
    body = {
        "metadata": {"name": "alerts", "namespace": "search", "generation": 1, "finalizers": [api_resource.FINALIZER]},
        "spec": cluster.wire,
        "status": wire,
    }
    resource = api_resource.Resource.from_body(body)
    (entry,) = resource.status.revisions
    assert (entry.config, entry.typed_config()) == (stored, None)
    plan = decide.decide(resource, cluster.children(), (), at(30), settings=SETTINGS)
    assert deleted(plan) == [] and plan.status.current_revision == R1
    # Whatever the operator writes back, the stored config is not lost.
    assert plan.status.to_wire()["revisions"][0]["config"] == stored


def test_a_legacy_free_text_pause_reason_reads_as_the_typed_reason() -> None:
    base = {"mode": "Canary", "stepStartedAt": "2026-01-01T12:00:00Z", "paused": True}
    legacy = api_status.RolloutStatus.model_validate(
        {**base, "pauseReason": "step without pauseSeconds: annotate faiss.dev/promote=true to continue"}
    )
    failure = api_status.RolloutStatus.model_validate({**base, "pauseReason": "AnalysisFailed: recall 0.5"})
    assert (legacy.pause_reason, legacy.pause_message) == ("AwaitingPromotion", None)
    assert (failure.pause_reason, failure.pause_message) == ("Failure", "AnalysisFailed: recall 0.5")


def test_a_serving_deployment_without_a_record_is_left_exactly_as_it_is() -> None:
    cluster = scenarios.serving()
    deployment = cluster.objects[("Deployment", manifests.deployment_name("alerts", R1))]
    del deployment["metadata"]["annotations"][manifests.ANNOTATION_REVISION_RECORD]
    cluster.status = api_status.FaissIndexStatus()
    plan = cluster.reconcile(at(30))
    assert deleted(plan) == []
    assert replicas_asked(plan, R1) is None or plan.status.current_revision == R1
    assert ("StatusRepaired", f"Deployment alerts-R1 serves revision R1, which the status does not record and "
            "which carries no readable record; left as it is") in warnings(plan)


# --- admin annotations act exactly once ------------------------------------------------------


def _apply_without(cluster: Cluster, plan: actions.Plan, *, removal: bool = True, status: bool = True) -> None:
    """Apply `plan` as the Kopf layer would, losing the annotation removal or the status write."""
    kept = tuple(a for a in plan.actions if removal or not isinstance(a, actions.RemoveAnnotation))
    lossy = actions.Plan(
        actions=kept,
        status=plan.status,
        status_changed=plan.status_changed and status,
        events=plan.events,
    )
    cluster.apply(lossy)


def test_rollback_previous_seen_again_after_its_removal_was_lost_acts_once() -> None:
    cluster = scenarios.canary_analysed()
    cluster.annotations["faiss.dev/rollback"] = "previous"
    first = decide.decide(cluster.resource(), cluster.children(), (), at(60), settings=SETTINGS)
    assert labelled(first).revisions == (("R2", "RolledBack"), ("R1", "Active"))
    _apply_without(cluster, first, removal=False)
    assert cluster.status.handled_annotations == {"faiss.dev/rollback": "previous"}
    second = cluster.reconcile(at(61))
    # Only the removal again: the stable is not rolled back as well.
    assert labelled(second) == Summary(
        (("RemoveAnnotation", "faiss.dev/rollback"),),
        "Degraded",
        "R1",
        None,
        None,
        (("R2", "RolledBack"), ("R1", "Active")),
    )
    assert second.events == ()
    third = cluster.reconcile(at(62))
    assert third.status.handled_annotations == {} and third.actions == ()


def test_rollback_previous_whose_status_write_was_lost_decides_the_same_again() -> None:
    cluster = scenarios.canary_analysed()
    cluster.annotations["faiss.dev/rollback"] = "previous"
    first = decide.decide(cluster.resource(), cluster.children(), (), at(60), settings=SETTINGS)
    _apply_without(cluster, first, status=False, removal=False)
    again = decide.decide(cluster.resource(), cluster.children(), (), at(60), settings=SETTINGS)
    # The same decision; only the Delete that already happened is not asked for again.
    assert again.status == first.status and again.events == first.events
    assert summarize(again).actions == (("RemoveAnnotation", "faiss.dev/rollback"),)
    assert [a for a in first.actions if not isinstance(a, actions.Delete)] == list(again.actions)


def test_promote_seen_twice_at_a_manual_step_opens_one_step_only() -> None:
    wire = spec(
        rollout={
            "steps": [{"weight": 25}, {"weight": 50}, {"weight": 75, "pauseSeconds": 60}],
            "progressDeadlineSeconds": 300,
            "scaleDownDelaySeconds": 30,
        }
    )
    cluster = scenarios.canary_analysed(wire)
    assert cluster.status.rollout is not None and cluster.status.rollout.pause_reason == "AwaitingPromotion"
    cluster.annotations["faiss.dev/promote"] = "true"
    first = decide.decide(cluster.resource(), cluster.children(), (), at(60), settings=SETTINGS)
    _apply_without(cluster, first, removal=False)
    second = cluster.reconcile(at(61))
    assert second.status.rollout is not None
    assert (second.status.rollout.step, second.status.rollout.promoting) == (1, False)
    assert [summarize(second).actions[-1]] == [("RemoveAnnotation", "faiss.dev/promote")]


def test_the_same_annotation_set_again_after_it_was_removed_acts_again() -> None:
    wire = spec(rollout={"steps": [{"weight": 25}, {"weight": 50}, {"weight": 75}], "progressDeadlineSeconds": 300})
    cluster = scenarios.canary_analysed(wire)
    cluster.annotations["faiss.dev/promote"] = "true"
    cluster.reconcile(at(60))  # step 2 (50%), removal applied
    cluster.ready_all()
    cluster.reconcile(at(61))  # the annotation is gone: its record goes
    assert cluster.status.handled_annotations == {}
    cluster.reconcile(at(70), (passing(R2, 1, at(65)),))
    assert cluster.status.rollout is not None and cluster.status.rollout.pause_reason == "AwaitingPromotion"
    cluster.annotations["faiss.dev/promote"] = "true"
    plan = cluster.reconcile(at(75))
    assert plan.status.rollout is not None and plan.status.rollout.step == 2


# --- rollback targets only revisions that served ----------------------------------------------


def test_rollback_previous_skips_a_superseded_canary_and_picks_the_revision_active_before() -> None:
    cluster = scenarios.canary_step0()  # R2 at its first step
    cluster.wire = with_config(cluster.wire, m=48)  # R3 supersedes the R2 canary
    cluster.generation += 1
    cluster.reconcile(at(60))
    cluster.finish_job(R3, message=report())
    cluster.reconcile(at(70))
    assert cluster.status.revision(R2).state == "Superseded"  # type: ignore[union-attr]
    now = promote_through(cluster, R3, 71)
    cluster.reconcile(at(now + 60))  # R1's scale-down delay is over
    cluster.annotations["faiss.dev/rollback"] = "previous"
    plan = cluster.reconcile(at(now + 70))
    assert plan.status.candidate_revision == R1
    assert plan.status.rollout is not None and plan.status.rollout.mode == "Rollback"
    # Once R1 serves again, `previous` is R3: two rollbacks go back and forth.
    cluster.ready_all()
    cluster.reconcile(at(now + 80))
    assert cluster.status.current_revision == R1
    cluster.annotations["faiss.dev/rollback"] = "previous"
    plan = cluster.reconcile(at(now + 90))
    # R3 left the Service when the first rollback finished (no scale-down delay after a
    # rollback): it comes back on all replicas, then the rollback completes.
    assert plan.status.candidate_revision == R3
    serving = {n: o["spec"]["replicas"] for (k, n), o in cluster.objects.items() if k == "Deployment"}
    assert serving == {manifests.deployment_name("alerts", R1): 4, manifests.deployment_name("alerts", R3): 4}
    cluster.ready_all()
    plan = cluster.reconcile(at(now + 100))
    assert labelled(plan).revisions == (("R3", "Active"), ("R2", "Superseded"), ("R1", "RolledBack"))


def test_rollback_to_a_revision_that_never_served_is_refused_with_a_warning() -> None:
    cluster = scenarios.canary_step0()
    cluster.wire = with_config(cluster.wire, m=48)
    cluster.generation += 1
    cluster.reconcile(at(60))  # R2 Superseded (never took all traffic), R3 building
    cluster.annotations["faiss.dev/rollback"] = R2
    plan = cluster.reconcile(at(61))
    assert plan.status.rollout is None or plan.status.rollout.mode != "Rollback"
    assert warnings(plan) == [("RollbackRefused", "faiss.dev/rollback: 'R2' never served (or its files are gone); "
                                                  "revisions that served: none")]


def test_rollback_to_the_canary_in_progress_does_not_promote_it() -> None:
    cluster = scenarios.canary_analysed()
    cluster.annotations["faiss.dev/rollback"] = R2
    plan = cluster.reconcile(at(60))
    assert plan.status.current_revision == R1
    assert plan.status.rollout is not None and plan.status.rollout.mode == "Canary"
    assert replicas_asked(plan, R2) is None  # still one replica, as its step says
    assert [r for r, _ in warnings(plan)] == ["RollbackRefused"]


def test_rollback_to_a_revision_that_fails_todays_gates_is_refused() -> None:
    cluster = scenarios.promoted_and_scaled_down()
    cluster.wire = {**cluster.wire, "evaluation": {**cluster.wire["evaluation"], "minRecall": 0.99}}
    cluster.generation += 1
    cluster.annotations["faiss.dev/rollback"] = "previous"
    plan = cluster.reconcile(at(300))
    assert plan.status.current_revision == R2 and plan.status.candidate_revision is None
    assert warnings(plan) == [
        (
            "RollbackRefused",
            "faiss.dev/rollback: revision R1 does not meet the evaluation gates: recall@10 0.970 < minRecall 0.99",
        )
    ]


# --- no input makes decide() raise ------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("source", {"uri": "pvc://x/../../y.npy"}, "spec.source.uri: a pvc:// path may neither contain a '..' segment"),
        # Refused by the models (and the CRD's CEL rule) since issue 19, as `validate` says offline.
        ("source", {"uri": "pvc://x//etc/y.npy"}, "spec.source.uri: a pvc:// path may neither contain a '..' segment "
                                                 "nor start with '/'"),
        (
            "source",
            {"uri": "pvc://x/y.npy", "idsUri": "pvc:///ids.npy"},
            "spec.source.idsUri: 'pvc:///ids.npy': no claim name after pvc://",
        ),
        ("artifacts", {"uri": "pvc://store//abs"}, "spec.artifacts.uri: a pvc:// path may neither contain a '..' "
                                                   "segment nor start with '/'"),
    ],
)
def test_a_uri_that_leaves_its_claim_stalls_with_the_reason_and_touches_nothing(
    field: str, value: dict[str, str], says: str
) -> None:
    cluster = scenarios.serving()
    cluster.wire = {**cluster.wire, field: value}
    cluster.generation += 1
    plan = cluster.reconcile(at(30))
    assert plan.actions == ()
    stalled = next(c for c in plan.status.conditions if c.type == "Stalled")
    assert (stalled.status, stalled.reason) == ("True", "InvalidSpec")
    assert says in stalled.message


def _edit_revisions(**changes: Any) -> Any:
    def edit(status: api_status.FaissIndexStatus) -> api_status.FaissIndexStatus:
        return status.model_copy(update={"revisions": [e.model_copy(update=changes) for e in status.revisions]})

    return edit


def _edit_rollout(**changes: Any) -> Any:
    def edit(status: api_status.FaissIndexStatus) -> api_status.FaissIndexStatus:
        assert status.rollout is not None
        return status.model_copy(update={"rollout": status.rollout.model_copy(update=changes)})

    return edit


@pytest.mark.parametrize(
    "edit",
    [
        _edit_revisions(artifact="s3://bucket/x"),
        _edit_revisions(artifact="pvc://x/../../y"),
        _edit_revisions(config={"bogus": 1}),
        _edit_revisions(index_type="LSH"),
        _edit_revisions(state="Building", metrics=None),
        _edit_rollout(step=99),
        _edit_rollout(mode="Rollback"),
        _edit_rollout(mode="Deploy", step_ready_at=None),
        lambda s: s.model_copy(update={"candidate_revision": s.current_revision}),
        lambda s: s.model_copy(update={"scale_downs": [api_status.ScaleDown(revision="nope", after=at(0))]}),
        lambda s: s.model_copy(update={"handled_annotations": {"faiss.dev/unknown": "x"}}),
    ],
    ids=[
        "artifact-not-pvc",
        "artifact-leaves-claim",
        "unknown-config-key",
        "unknown-index-type",
        "all-building",
        "step-past-the-last",
        "rollout-mode-flipped",
        "deploy-mode-with-a-stable",
        "candidate-is-current",
        "scale-down-of-unknown",
        "foreign-record",
    ],
)
def test_a_hand_edited_status_never_makes_decide_raise_nor_removes_the_stable(edit: Any) -> None:
    cluster = scenarios.canary_analysed()
    cluster.annotations = {"faiss.dev/rollback": "previous", "faiss.dev/promote": "true"}
    cluster.status = edit(cluster.status)
    for now in (60, 61, 400):
        plan = cluster.reconcile(at(now))
        assert ("Deployment", manifests.deployment_name("alerts", R1)) not in [
            (a.kind, a.name) for a in plan.actions if isinstance(a, actions.Delete)
        ]


def test_an_invalid_spec_does_not_freeze_abort() -> None:
    cluster = scenarios.canary_analysed()
    cluster.wire = {**cluster.wire, "dimension": 0}
    cluster.generation += 1
    cluster.annotations["faiss.dev/abort"] = "true"
    plan = cluster.reconcile(at(60))
    assert labelled(plan) == Summary(
        (("RemoveAnnotation", "faiss.dev/abort"), ("Delete", "Deployment", "alerts-R2")),
        "Degraded",
        "R1",
        None,
        None,
        (("R2", "RolledBack"), ("R1", "Active")),
    )
    assert plan.status.handled_annotations == {"faiss.dev/abort": "true"}
    stalled = next(c for c in plan.status.conditions if c.type == "Stalled")
    assert (stalled.status, stalled.reason) == ("True", "InvalidSpec")
    assert [r for r, _ in warnings(plan)] == ["InvalidSpec", "RevisionRolledBack"]


def test_an_invalid_spec_does_not_freeze_the_progress_deadline() -> None:
    cluster = scenarios.canary_step0(ready=False)  # R2's step started at 40, never ready
    cluster.wire = {**cluster.wire, "dimension": 0}
    cluster.generation += 1
    plan = cluster.reconcile(at(100))
    assert plan.requeue_after == 340 - 100 and plan.status.candidate_revision == R2
    plan = cluster.reconcile(at(340))
    assert labelled(plan).revisions == (("R2", "RolledBack"), ("R1", "Active"))
    assert summarize(plan).actions == (("Delete", "Deployment", manifests.deployment_name("alerts", R2)),)


def test_an_invalid_spec_keeps_the_serving_children_in_sync() -> None:
    cluster = scenarios.serving()
    cluster.wire = {**cluster.wire, "dimension": 0, "serving": {"replicas": 6}}
    cluster.generation += 1
    plan = cluster.reconcile(at(30))
    assert replicas_asked(plan, R1) == 6
    assert plan.status.current_revision == R1


def test_an_invalid_spec_with_nothing_in_flight_or_serving_refuses_annotations_with_a_warning() -> None:
    cluster = Cluster({**spec(), "dimension": 0})
    cluster.annotations["faiss.dev/abort"] = "true"
    plan = cluster.reconcile(at(0))
    assert summarize(plan).actions == (("RemoveAnnotation", "faiss.dev/abort"),)
    assert plan.status.handled_annotations == {"faiss.dev/abort": "true"}
    assert [r for r, _ in warnings(plan)] == ["InvalidSpec", "AnnotationIgnored"]
    assert plan.status.phase == "Failed"
    cluster.reconcile(at(1))
    assert cluster.reconcile(at(2)).events == ()


# --- conditions kstatus and kubectl read right ------------------------------------------------


def test_the_first_reconcile_writes_observed_generation_and_conditions() -> None:
    cluster = Cluster(spec())
    plan = cluster.reconcile(at(0))
    assert plan.status_changed
    assert plan.status_patch["observedGeneration"] == 1
    types = {c["type"]: c["status"] for c in plan.status_patch["conditions"]}
    assert types["Reconciling"] == "True" and types["Stalled"] == "False" and types["Ready"] == "False"


def test_reconciling_is_false_while_stalled_is_true() -> None:
    wire = spec(rollout={**spec()["rollout"], "autoRollback": False, "onFailure": "Pause"})
    cluster = scenarios.canary_step0(wire)
    plan = cluster.reconcile(at(55), (passing(R2, 0, at(52), recall=0.5),))
    found = {c.type: (c.status, c.reason) for c in plan.status.conditions}
    assert found["Stalled"] == ("True", "PausedOnFailure")
    assert found["Reconciling"] == ("False", "PausedOnFailure")
    assert plan.status.rollout is not None and plan.status.rollout.pause_reason == "Failure"


def test_a_finished_rollback_does_not_flip_its_phase_when_the_scale_down_delay_expires() -> None:
    cluster = scenarios.promoted_and_scaled_down()
    cluster.annotations["faiss.dev/rollback"] = "previous"
    cluster.reconcile(at(300))
    cluster.ready_all()
    phases = [cluster.reconcile(at(t)).status.phase for t in (301, 320, 331, 332, 340)]
    assert len(set(phases)) == 1, phases


# --- deadlines measure lack of progress -------------------------------------------------------


def test_a_pod_restart_during_a_long_pause_does_not_fail_the_step_at_once() -> None:
    wire = spec(rollout={**spec()["rollout"], "steps": [{"weight": 25, "pauseSeconds": 3600}]})
    cluster = scenarios.canary_analysed(wire)
    cluster.ready(R2, 0)  # the canary's pod restarts, long after the step started
    plan = cluster.reconcile(at(1000))
    assert plan.status.rollout is not None and plan.status.rollout.unready_since == at(1000)
    assert plan.status.candidate_revision == R2 and plan.requeue_after == 300
    plan = cluster.reconcile(at(1299))
    assert plan.status.candidate_revision == R2
    plan = cluster.reconcile(at(1300))
    assert plan.status.revision(R2).state == "RolledBack"  # type: ignore[union-attr]


def test_a_step_that_is_whole_again_forgets_its_unready_time() -> None:
    wire = spec(rollout={**spec()["rollout"], "steps": [{"weight": 25, "pauseSeconds": 3600}]})
    cluster = scenarios.canary_analysed(wire)
    cluster.ready(R2, 0)
    cluster.reconcile(at(1000))
    cluster.ready(R2)
    plan = cluster.reconcile(at(1100))
    assert plan.status.rollout is not None and plan.status.rollout.unready_since is None


def test_a_first_deploy_with_some_ready_replicas_at_its_deadline_keeps_them_and_says_degraded() -> None:
    cluster = scenarios.building()
    cluster.finish_job(R1, message=report())
    cluster.reconcile(at(10))
    cluster.ready(R1, 1)
    plan = cluster.reconcile(at(310))
    released = (("Delete", "Pod", "alerts-build-R1-pod"),)  # the build's pod, its report recorded
    assert labelled(plan) == Summary(released, "Ready", "R1", None, None, (("R1", "Active"),))
    found = {c.type: (c.status, c.reason, c.message) for c in plan.status.conditions}
    assert found["Ready"] == ("True", "Serving", f"revision {R1} serves 1/4 replicas")
    assert found["Degraded"] == ("True", "ReplicasUnavailable", f"1/4 replicas of {R1} ready")
    assert warnings(plan)[0] == ("PromotedDegraded", "revision R1 serves with 1/4 replicas ready after 300s")


def test_a_first_deploy_that_still_needs_its_live_analysis_at_its_deadline_pauses_serving_what_it_has() -> None:
    cluster = scenarios.building()
    cluster.finish_job(R1, message=report())
    cluster.reconcile(at(10))  # R1 deploying
    cluster.wire = with_config(cluster.wire, efSearch=64)  # R4: R1's artifact, no build-time recall
    cluster.generation += 1
    r4 = revision_of(cluster.wire)
    cluster.reconcile(at(20))
    cluster.ready(r4, 2)
    plan = cluster.reconcile(at(320))
    assert plan.status.current_revision is None and plan.status.candidate_revision == r4
    assert plan.status.rollout is not None
    assert (plan.status.rollout.paused, plan.status.rollout.pause_reason) == (True, "Failure")
    assert deleted(plan) == []
    cluster.ready(r4)  # all replicas ready after all: the deploy goes on, to its live analysis
    plan = cluster.reconcile(at(330))
    assert plan.status.rollout is not None and not plan.status.rollout.paused
    assert summarize(plan).actions == (("Analyze", r4, 0),)


# --- nothing leaks ----------------------------------------------------------------------------


def test_actual_weight_counts_a_revision_still_in_its_scale_down_delay() -> None:
    cluster = scenarios.promoted_and_scaled_down()  # R1 gone, R2 Active
    cluster.wire = with_config(cluster.wire, m=48)
    cluster.generation += 1
    cluster.reconcile(at(300))
    cluster.finish_job(R3, message=report())
    cluster.reconcile(at(310))
    # R1, replaced earlier, is made to linger in its scale-down delay beside the stable R2.
    status = cluster.status
    lingering = api_status.ScaleDown(revision=api_status.Revision(R1), after=at(1000))
    r1 = api_status.RevisionStatus(
        name=api_status.Revision(R1),
        index_type="HNSW",
        artifact="pvc://faiss-artifacts/alerts/k1",
        artifact_key="k1",
        state="Retired",
        metrics=api_status.RevisionMetrics(vectors=1),
        created_at=at(0),
        promoted_at=at(20),
    )
    cluster.status = status.model_copy(update={"scale_downs": [lingering], "revisions": [*status.revisions, r1]})
    r1_deployment = copy.deepcopy(cluster.objects[("Deployment", manifests.deployment_name("alerts", R2))])
    r1_deployment["metadata"]["name"] = manifests.deployment_name("alerts", R1)
    r1_deployment["metadata"]["labels"][manifests.LABEL_REVISION] = R1
    r1_deployment["status"] = {"replicas": 4, "readyReplicas": 4}
    cluster.objects[("Deployment", manifests.deployment_name("alerts", R1))] = r1_deployment
    cluster.ready_all()
    plan = cluster.reconcile(at(320))
    assert plan.status.rollout is not None
    # R3: 1 ready; R2: 4; R1 (lingering): 4 -> 1/9 = 11%.
    assert plan.status.rollout.actual_weight == 11


def _r2_superseded_while_building(wire: dict[str, Any]) -> Cluster:
    cluster = scenarios.serving(wire)
    cluster.wire = with_config(wire, m=32)
    cluster.generation += 1
    cluster.reconcile(at(30))  # R2 building
    cluster.wire = with_config(wire, m=48)
    cluster.generation += 1
    return cluster


def test_the_artifact_of_a_build_that_never_completed_is_removed_when_it_leaves_history() -> None:
    wire = spec(rollout={**spec()["rollout"], "revisionHistoryLimit": 0})
    cluster = _r2_superseded_while_building(wire)
    plan = cluster.reconcile(at(31))
    # R2 stays in history while its build Job still runs, so that its files are not removed
    # under a build that may still write them; the Job goes first.
    assert labelled(plan).revisions == (("R3", "Building"), ("R2", "Superseded"), ("R1", "Active"))
    assert ("Delete", "Job", _label(manifests.job_name("alerts", R2, 0))) in labelled(plan).actions
    assert plan.requeue_after == 5
    plan = cluster.reconcile(at(36))
    r2_key = artifact_key_of(with_config(wire, m=32))
    cleanups = [a.name for a in plan.actions if isinstance(a, actions.Apply) and "cleanup" in a.name]
    assert cleanups == [manifests.cleanup_job_name("alerts", r2_key)]
    assert plan.status.revision(R2) is None


def test_a_build_waits_for_a_running_cleanup_job_of_the_same_artifact() -> None:
    wire = spec(rollout={**spec()["rollout"], "revisionHistoryLimit": 0})
    cluster = _r2_superseded_while_building(wire)
    cluster.reconcile(at(31))
    cluster.reconcile(at(36))  # R2 left history: its cleanup Job runs
    cluster.wire = with_config(wire, m=32)  # back to R2: a rebuild of the same artifact
    cluster.generation += 1
    plan = cluster.reconcile(at(37))
    assert not [a for a in summarize(plan).actions if a[:2] == ("Apply", "Job") and "build" in a[2]]
    assert plan.requeue_after == 5
    cleanup = next(o for (k, n), o in cluster.objects.items() if k == "Job" and "cleanup" in n)
    cleanup["status"] = {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
    plan = cluster.reconcile(at(42))
    assert ("Apply", "Job", manifests.job_name("alerts", R2, 0)) in summarize(plan).actions


def test_importing_the_controller_does_not_import_faiss_or_numpy() -> None:
    import subprocess
    import sys

    code = (
        "import sys; import faiss_operator.controller.decision.decide; "
        "bad = [m for m in ('faiss', 'numpy') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr



def test_the_lazy_index_package_still_gives_every_public_name() -> None:
    import faiss_operator.index as index_package

    for name in index_package.__all__:
        assert getattr(index_package, name).__name__ == name
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        index_package.Nope  # noqa: B018


def test_rollback_previous_after_an_upgrade_finds_a_revision_replaced_by_a_promotion() -> None:
    """A status written before promotedAt existed: Retired with no reason = replaced by a
    promotion (it served); Retired with reason Superseded never did."""
    cluster = scenarios.promoted_and_scaled_down()
    legacy = [
        e.model_copy(update={"promoted_at": None, **({"state": "Retired", "reason": None} if e.name == R1 else {})})
        for e in cluster.status.revisions
    ]
    cluster.status = cluster.status.model_copy(update={"revisions": legacy})
    cluster.annotations["faiss.dev/rollback"] = "previous"
    plan = cluster.reconcile(at(300))
    assert plan.status.candidate_revision == R1
    superseded = [e.model_copy(update={"reason": "Superseded"}) if e.name == R1 else e for e in legacy]
    cluster = scenarios.promoted_and_scaled_down()
    cluster.status = cluster.status.model_copy(update={"revisions": superseded})
    cluster.annotations["faiss.dev/rollback"] = "previous"
    plan = cluster.reconcile(at(300))
    assert plan.status.candidate_revision is None
    assert [r for r, _ in warnings(plan)] == ["RollbackRefused"]
