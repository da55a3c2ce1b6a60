"""What the status says after each transition: conditions, messages, metrics, events, timers."""

from __future__ import annotations

import pytest

import datetime

import dataclasses

from faiss_operator.api import resource as api_resource
from faiss_operator.api import status as api_status
from faiss_operator.controller.decision import actions, observed, conditions, decide
from faiss_operator.controller.decision import settings as operator_settings

from tests.controller import scenarios
from tests.controller.builders import (
    SETTINGS,
    artifact_key_of,
    at,
    make_resource,
    passing,
    report,
    revision_of,
    spec,
    with_config,
)

R1 = revision_of(spec())
R2 = revision_of(with_config(spec(), m=32))


def condition(status: api_status.FaissIndexStatus, type_: str) -> tuple[str, str, str]:
    found = conditions.get(status.conditions, type_)
    assert found is not None, f"no {type_} condition"
    return (found.status, found.reason, found.message)


def test_build_report_becomes_revision_metrics_and_served_recall() -> None:
    cluster = scenarios.serving()
    entry = cluster.status.revision(R1)
    assert entry is not None and entry.metrics == api_status.RevisionMetrics(
        vectors=5000, k=10, recall=0.97, p50_latency_ms=0.2, p99_latency_ms=0.9, memory_bytes=123456, build_seconds=4.5
    )
    assert (cluster.status.recall, cluster.status.p99_latency_ms, cluster.status.index_type) == (0.97, 0.9, "HNSW")
    assert entry.artifact == f"pvc://faiss-artifacts/alerts/{entry.artifact_key}"
    assert entry.to_wire()["config"] == {"m": 16, "efConstruction": 100, "efSearch": 32}
    assert condition(cluster.status, "Ready") == ("True", "Serving", f"revision {R1} serves 4/4 replicas")
    assert condition(cluster.status, "IndexBuilt")[:2] == ("True", "Built")
    assert condition(cluster.status, "RecallTargetMet") == ("True", "AboveThreshold", "recall@10 0.970 >= 0.9")
    assert condition(cluster.status, "LatencyTargetMet") == ("True", "WithinLimit", "p99 ms 0.900 <= 5.0")
    assert condition(cluster.status, "Stalled")[0] == "False"
    assert condition(cluster.status, "Reconciling")[0] == "False"
    assert all(c.observed_generation == 1 for c in cluster.status.conditions)


def test_a_failed_build_says_why_and_the_old_revision_stays_ready() -> None:
    cluster = scenarios.candidate_building()
    cluster.finish_job(R2, failed="ValueError: 3 rows contain NaN (first: row 17)")
    plan = cluster.reconcile(at(40))
    entry = plan.status.revision(R2)
    assert entry is not None and entry.state == "Failed" and entry.reason == "BuildFailed"
    assert entry.message is not None
    assert "BackoffLimitExceeded" in entry.message
    assert "exited with code 3 (Error): ValueError: 3 rows contain NaN (first: row 17)" in entry.message
    assert condition(plan.status, "Ready")[0] == "True"
    assert condition(plan.status, "IndexBuilt")[:2] == ("False", "BuildFailed")
    stalled = condition(plan.status, "Stalled")
    assert stalled[:2] == ("True", "RevisionFailed") and "faiss.dev/retry" in stalled[2]
    assert condition(plan.status, "Degraded")[:2] == ("True", "RevisionFailed")
    assert actions.Event("Warning", "RevisionFailed", f"revision {R2} is Failed: {entry.message}") in plan.events


def test_gates_name_the_measured_value_and_the_threshold() -> None:
    cluster = scenarios.candidate_building()
    cluster.finish_job(R2, message=report(recall=0.6, p99_ms=9.5))
    plan = cluster.reconcile(at(40))
    entry = plan.status.revision(R2)
    assert entry is not None and entry.reason == "GatesNotMet"
    assert entry.message == "recall@10 0.600 < minRecall 0.9; p99 9.500 ms > maxP99LatencyMs 5.0"
    assert condition(plan.status, "RecallTargetMet") == ("False", "BelowThreshold", "recall@10 0.600 < 0.9")
    assert condition(plan.status, "LatencyTargetMet") == ("False", "AboveLimit", "p99 ms 9.500 > 5.0")


def test_a_bad_report_is_named_in_the_revision() -> None:
    cluster = scenarios.building()
    cluster.finish_job(R1, message='{"vectors": 10}')
    plan = cluster.reconcile(at(10))
    entry = plan.status.revision(R1)
    assert entry is not None and entry.reason == "BadReport"
    assert entry.message is not None and "recall" in entry.message and "p99_ms" in entry.message
    assert plan.status.phase == "Failed"
    assert condition(plan.status, "Ready")[:2] == ("False", "NoServingRevision")


def test_nothing_changed_means_no_status_write_and_no_events() -> None:
    cluster = scenarios.serving()
    plan = cluster.reconcile(at(500))
    assert plan == actions.Plan(actions=(), status=cluster.status, status_changed=False, events=(), requeue_after=None)


def test_last_transition_time_moves_only_when_a_condition_changes() -> None:
    cluster = scenarios.serving()
    ready_since = conditions.get(cluster.status.conditions, "Ready")
    progressing_since = conditions.get(cluster.status.conditions, "Progressing")
    assert ready_since is not None and progressing_since is not None
    cluster.wire = with_config(cluster.wire, m=32)
    cluster.generation = 2
    plan = cluster.reconcile(at(30))
    ready = conditions.get(plan.status.conditions, "Ready")
    progressing = conditions.get(plan.status.conditions, "Progressing")
    assert ready is not None and ready.last_transition_time == ready_since.last_transition_time
    assert ready.observed_generation == 2
    assert progressing is not None and progressing.status == "True" and progressing.last_transition_time == at(30)


def test_canary_status_reports_step_weight_and_the_weight_ready_replicas_give() -> None:
    cluster = scenarios.canary_step0()
    rollout = cluster.status.rollout
    assert rollout is not None
    assert (rollout.step, rollout.weight, rollout.actual_weight, rollout.step_ready_at) == (0, 25, 20, at(50))
    assert condition(cluster.status, "Progressing") == ("True", "CanaryStep", f"step 1/2: 25% on {R2}")
    assert condition(cluster.status, "Ready")[0] == "True"


def test_timers_requeue_exactly_when_something_is_due() -> None:
    cluster = scenarios.canary_step0()
    plan = cluster.reconcile(at(55), (passing(R2, 0, at(52)),))
    assert plan.requeue_after == 50 + 60 - 55  # the step's pause ends 60 s after it was ready
    plan = cluster.reconcile(at(56))
    assert plan.requeue_after == 54


def test_an_analysis_request_comes_back_after_the_interval() -> None:
    cluster = scenarios.canary_step0(ready=False)
    cluster.ready_all()
    plan = cluster.reconcile(at(50))
    assert plan.requeue_after == SETTINGS.analysis_interval_seconds
    (analyze,) = [a for a in plan.actions if isinstance(a, actions.Analyze)]
    entry = plan.status.revision(R2)
    assert entry is not None
    assert analyze == actions.Analyze(candidate=R2, stable=R1, step=0, artifact=entry.artifact, k=10)


@pytest.mark.parametrize("fraction", [0.0, 0.5], ids=["whole second", "half second"])
def test_failure_limit_counts_failed_analyses_once_each(fraction: float) -> None:
    wire = spec(rollout={**spec()["rollout"], "analysis": {"failureLimit": 1}})
    cluster = scenarios.canary_step0(wire)
    failing = passing(R2, 0, at(52) + datetime.timedelta(seconds=fraction), recall=0.5)
    plan = cluster.reconcile(at(55), (failing,))
    assert plan.status.rollout is not None and plan.status.rollout.analysis_failures == 1
    # The same measurement seen again is not a second failure.
    plan = cluster.reconcile(at(56), (failing,))
    assert plan.status.rollout is not None and plan.status.rollout.analysis_failures == 1
    plan = cluster.reconcile(at(60), (failing, passing(R2, 0, at(58), recall=0.5)))
    assert plan.status.candidate_revision is None
    entry = plan.status.revision(R2)
    assert entry is not None and entry.state == "RolledBack" and entry.reason == "AnalysisFailed"
    assert entry.message == "step 1: live recall 0.500 < 0.9"


def test_a_revision_that_reuses_an_artifact_takes_its_recall_from_live_analysis() -> None:
    cluster = scenarios.serving()
    cluster.wire = with_config(cluster.wire, efSearch=64)
    plan = cluster.reconcile(at(30))
    reused = plan.status.revision(plan.status.candidate_revision)
    first = plan.status.revision(R1)
    assert reused is not None and first is not None
    assert reused.reused_from == R1 and reused.artifact == first.artifact and reused.artifact_key == first.artifact_key
    assert reused.metrics == api_status.RevisionMetrics(vectors=5000, memory_bytes=123456, build_seconds=4.5)
    assert condition(plan.status, "IndexBuilt")[:2] == ("True", "ArtifactReused")
    assert condition(plan.status, "RecallTargetMet")[:2] == ("Unknown", "NotMeasured")
    cluster.ready_all()
    cluster.reconcile(at(31))
    plan = cluster.reconcile(at(33), (passing(reused.name, 0, at(32), recall=0.991, p99_latency_ms=1.2),))
    measured = plan.status.revision(reused.name)
    assert measured is not None and measured.metrics is not None
    assert (measured.metrics.recall, measured.metrics.p99_latency_ms) == (0.991, 1.2)


def test_history_keeps_revision_history_limit_plus_one_and_removes_unused_artifacts() -> None:
    wire = spec(rollout={**spec()["rollout"], "steps": [], "revisionHistoryLimit": 1, "scaleDownDelaySeconds": 0})
    cluster = scenarios.serving(wire)
    names = [R1]
    for number, m in enumerate((20, 24, 28), start=1):
        cluster.wire = with_config(cluster.wire, m=m)
        base = 100 * number
        cluster.reconcile(at(base))
        name = revision_of(cluster.wire)
        names.append(name)
        cluster.finish_job(name, message=report())
        cluster.reconcile(at(base + 1))
        cluster.ready_all()
        cluster.reconcile(at(base + 2))
        plan = cluster.reconcile(at(base + 3), (passing(name, 0, at(base + 2)),))
        assert plan.status.current_revision == name, plan.status
    assert [e.name for e in cluster.status.revisions] == [names[3], names[2]]
    cleanup_jobs = sorted(k[1] for k in cluster.objects if k[0] == "Job" and "-cleanup-" in k[1])
    keys = {revision: key for revision, key in zip(names, keys_of(names))}
    assert cleanup_jobs == sorted(f"alerts-cleanup-{keys[n]}" for n in names[:2])
    build_jobs = sorted(k[1] for k in cluster.objects if k[0] == "Job" and "-build-" in k[1])
    assert build_jobs == sorted(f"alerts-build-{n}" for n in names[2:])
    deployments = [k[1] for k in cluster.objects if k[0] == "Deployment"]
    assert deployments == [f"alerts-{names[3]}"]


def keys_of(names: list[str]) -> list[str]:
    wire = spec()
    return [artifact_key_of(w) for w in (wire, *(with_config(wire, m=m) for m in (20, 24, 28)))]


def test_a_cleanup_job_is_not_owned_so_it_outlives_the_index() -> None:
    cluster = scenarios.serving()
    plan = decide.decide(
        make_resource(cluster.wire, cluster.status, deleting=True), cluster.children(), (), at(100), settings=SETTINGS
    )
    applies = [a for a in plan.actions if isinstance(a, actions.Apply)]
    assert [a.kind for a in applies] == ["Job"]
    assert "ownerReferences" not in applies[0].manifest["metadata"]
    assert applies[0].manifest["spec"]["ttlSecondsAfterFinished"] == SETTINGS.cleanup_ttl_seconds


def test_deletion_removes_children_and_artifacts_then_releases_the_finalizer() -> None:
    cluster = scenarios.canary_step0()
    cluster.deleting = True
    plan = cluster.reconcile(at(100))
    summary = [(type(a).__name__, getattr(a, "kind", ""), getattr(a, "name", "")) for a in plan.actions]
    keys = [e.artifact_key for e in cluster.status.revisions]
    assert summary == [
        ("Delete", "Deployment", f"alerts-{R1}"),
        ("Delete", "Deployment", f"alerts-{R2}"),
        ("Delete", "Job", f"alerts-build-{R1}"),
        ("Delete", "Job", f"alerts-build-{R2}"),
        ("Delete", "Service", "alerts"),
        ("Delete", "PodDisruptionBudget", "alerts"),
        *(("Apply", "Job", f"alerts-cleanup-{key}") for key in keys),
        ("RemoveFinalizer", "", "faiss.dev/cleanup"),
    ]
    assert not plan.status_changed


# --- bad and contradictory inputs -------------------------------------------------------------


def test_an_invalid_spec_leaves_the_serving_revision_untouched_and_says_why() -> None:
    cluster = scenarios.serving()
    before = cluster.status
    cluster.wire = {**cluster.wire, "dimension": 0}
    cluster.generation = 2
    plan = cluster.reconcile(at(30))
    assert plan.actions == ()
    # Stalled True (kstatus: Failed) while Ready stays True, the old revision serving on: phase Degraded.
    assert plan.status.current_revision == R1 and plan.status.phase == "Degraded"
    assert plan.status.revisions == before.revisions
    assert condition(plan.status, "Stalled") == (
        "True",
        "InvalidSpec",
        "spec.dimension: Input should be greater than or equal to 1",
    )
    assert condition(plan.status, "Ready")[0] == "True"
    assert plan.status.observed_generation == 2
    assert [e.reason for e in plan.events] == ["InvalidSpec", "PhaseDegraded"]


def test_a_config_key_of_another_index_type_is_refused_with_the_camel_case_name() -> None:
    wire = spec(config={"nprobe": 4})
    plan = decide.decide(make_resource(wire), observed.Children(), (), at(0), settings=SETTINGS)
    assert plan.actions == ()
    assert plan.status.phase == "Failed"
    assert condition(plan.status, "Stalled")[2] == (
        "spec.config.nprobe: not a parameter of indexType HNSW; valid keys: efConstruction, efSearch, m"
    )


def test_the_operators_default_index_type_applies_to_a_spec_without_one() -> None:
    settings = operator_settings.OperatorSettings(
        image="img", index_env={"FAISS_INDEX_TYPE": "IVF", "FAISS_NPROBE": "7"}
    )
    wire = {k: v for k, v in spec().items() if k not in ("indexType", "config")}
    plan = decide.decide(make_resource(wire), observed.Children(), (), at(0), settings=settings)
    (entry,) = plan.status.revisions
    assert (entry.index_type, entry.to_wire()["config"]) == ("IVF", {"nprobe": 7})
    assert plan.status.index_type == "IVF"
    job = next(a for a in plan.actions if isinstance(a, actions.Apply))
    args = job.manifest["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--index-type") + 1] == "IVF"


def test_a_spec_key_that_does_not_fit_the_operators_default_type_is_refused() -> None:
    settings = operator_settings.OperatorSettings(image="img", index_env={"FAISS_INDEX_TYPE": "IVF"})
    wire = {k: v for k, v in spec().items() if k != "indexType"}
    plan = decide.decide(make_resource(wire), observed.Children(), (), at(0), settings=settings)
    assert plan.actions == ()
    assert (
        "not a parameter of indexType IVF; valid keys: nlist, nprobe, trainSize" in condition(plan.status, "Stalled")[2]
    )


def test_a_bad_operator_default_index_type_is_refused() -> None:
    settings = operator_settings.OperatorSettings(image="img", index_env={"FAISS_INDEX_TYPE": "LSH"})
    wire = {k: v for k, v in spec().items() if k not in ("indexType", "config")}
    plan = decide.decide(make_resource(wire), observed.Children(), (), at(0), settings=settings)
    assert "unknown index type 'LSH'" in condition(plan.status, "Stalled")[2]


def test_a_status_naming_revisions_it_does_not_hold_is_repaired() -> None:
    cluster = scenarios.serving()
    broken = cluster.status.model_copy(update={"current_revision": "feedface00", "candidate_revision": "deadbeef00"})
    plan = decide.decide(make_resource(cluster.wire, broken), cluster.children(), (), at(30), settings=SETTINGS)
    reasons = [e.reason for e in plan.events]
    assert reasons.count("StatusRepaired") == 3
    # With no trusted serving revision, the Active revision whose Deployment serves is adopted
    # back as the current one (the third repair), and nothing is rebuilt or redeployed.
    assert plan.status.current_revision == R1 and plan.status.candidate_revision is None
    assert plan.actions == ()


def test_an_unparseable_stored_status_starts_afresh() -> None:
    body = {
        "metadata": {"name": "alerts", "namespace": "search", "generation": 3},
        "spec": spec(),
        "status": {"phase": "Exploded"},
    }
    parsed = api_resource.Resource.from_body(body)
    assert parsed.status == api_status.FaissIndexStatus()
    assert parsed.generation == 3


def test_an_unknown_annotation_value_is_refused_and_removed() -> None:
    cluster = scenarios.canary_step0()
    cluster.annotations["faiss.dev/promote"] = "yes please"
    plan = cluster.reconcile(at(51))
    assert plan.actions[0] == actions.RemoveAnnotation("faiss.dev/promote")
    assert (
        actions.Event("Warning", "AnnotationIgnored", "faiss.dev/promote: expected \"true\", got 'yes please'")
        in plan.events
    )
    assert plan.status.rollout is not None and not plan.status.rollout.promoting


def test_decide_ignores_sub_second_clock_noise() -> None:
    cluster = scenarios.serving()
    first = decide.decide(cluster.resource(), cluster.children(), (), at(30), settings=SETTINGS)
    second = decide.decide(cluster.resource(), cluster.children(), (), at(30.4), settings=SETTINGS)
    assert dataclasses.replace(first, events=()) == dataclasses.replace(second, events=())


def test_an_unready_canary_has_a_target_weight_but_no_actual_weight() -> None:
    cluster = scenarios.canary_step0(ready=False)
    rollout = cluster.status.rollout
    assert rollout is not None and (rollout.weight, rollout.actual_weight) == (25, 0)


def test_a_first_deploy_reports_the_share_of_its_ready_replicas() -> None:
    cluster = scenarios.building()
    cluster.finish_job(revision_of(cluster.wire), message=report())
    cluster.reconcile(at(10))
    cluster.ready(revision_of(cluster.wire), 1)
    plan = cluster.reconcile(at(15))
    rollout = plan.status.rollout
    assert rollout is not None and (rollout.mode, rollout.weight, rollout.actual_weight) == ("Deploy", 100, 100)


def test_a_build_that_passed_with_degenerate_data_says_so_once_in_a_warning_event() -> None:
    # Issue 19, item 11: duplicates and constant dimensions are indexed (the documented rule), but
    # not silently: the build report counts them, and the controller turns the counts into a Warning.
    cluster = scenarios.building()
    cluster.finish_job(R1, message=report(data_quality={
        "near_zero_norm_vectors": 0, "duplicate_vectors": 12, "constant_dimensions": 3}))
    plan = cluster.reconcile(at(10))
    entry = plan.status.revision(R1)
    assert entry is not None and entry.state == "Built"
    warnings = [event for event in plan.events if event.type == "Warning"]
    assert warnings == [actions.Event(
        "Warning", "DegenerateData",
        f"revision {R1} built from 5000 vectors with degenerate data (constant dimensions: 3, duplicate vectors: 12); "
        'see README "Degenerate data"',
    )]


def test_a_build_with_clean_data_warns_nothing() -> None:
    cluster = scenarios.building()
    cluster.finish_job(R1, message=report(data_quality={
        "near_zero_norm_vectors": 0, "duplicate_vectors": 0, "constant_dimensions": 0}))
    plan = cluster.reconcile(at(10))
    assert [event for event in plan.events if event.type == "Warning"] == []
