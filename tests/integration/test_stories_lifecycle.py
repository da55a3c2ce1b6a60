"""Issue 9, section 3: one index's life on the real control plane, with `faiss-operator run` as a
process (KUBECONFIG = the test cluster's), the way a user runs it.

The stories run in order on the index `glosses` (2000 x 16 vectors in a claim):
1 first index (IVF) -> 2 migration to HNSW by canary -> 5 a search-parameters-only revision fails
live analysis and is rolled back -> 7 GitOps revert to the IVF revision -> 6 the admin annotations
-> 3 a client loop that searched the Service through 2, 5, 7 and 6 saw no failed query -> 10 delete.
Each test is one story; after a failure the later ones are skipped (e2e/stories/chain.py).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from kubernetes import client

from e2e.harness.kubectl import Kubectl
from e2e.harness.operator import OperatorProcess
from e2e.harness.waiting import wait_for
from e2e.stories import data, environment
from e2e.stories.chain import Chain
from e2e.stories.faissindex import Index, Obj, PhaseRecorder, body, condition, revision
from e2e.stories.traffic import SearchLoop

pytestmark = pytest.mark.integration

NAME = "glosses"
ROLLOUT: dict[str, Any] = {"steps": [{"weight": 50, "pauseSeconds": 4}], "scaleDownDelaySeconds": 5,
                           "progressDeadlineSeconds": 150, "revisionHistoryLimit": 5}
# A step without pauseSeconds: the rollout waits there for faiss.dev/promote.
INDEFINITE: dict[str, Any] = {**ROLLOUT, "steps": [{"weight": 50}]}
# nprobe = nlist: every list is searched, so the IVF index answers exactly as brute force does.
IVF = {"indexType": "IVF", "config": {"nlist": 16, "nprobe": 16}}
HNSW = {"indexType": "HNSW", "config": {"m": 16, "efConstruction": 40, "efSearch": 32}}
# Measured on these vectors: recall@10 0.99 at efSearch 32, 0.63 at efSearch 1.
HNSW_EF1 = {"indexType": "HNSW", "config": {"m": 16, "efConstruction": 40, "efSearch": 1}}
HNSW_EF48 = {"indexType": "HNSW", "config": {"m": 16, "efConstruction": 40, "efSearch": 48}}
BUILD_READY_SECONDS = 240  # a build Job and a serving pod, each a Python process importing FAISS, on 2 busy cores
ROLLOUT_SECONDS = 180


def spec(index: dict[str, Any], *, rollout: dict[str, Any] | None = None,
         analysis: dict[str, Any] | None = None) -> Obj:
    rollout = dict(rollout or ROLLOUT)
    if analysis:
        rollout["analysis"] = analysis
    return environment.index_spec(index, rollout=rollout)


@dataclasses.dataclass
class Life:
    namespace: str
    index: Index
    operator: OperatorProcess
    kubectl: Kubectl
    chain: Chain
    phases: PhaseRecorder
    loop: SearchLoop | None = None

    def apply(self, spec_: Obj) -> None:
        self.kubectl.apply(body(NAME, spec_, namespace=self.namespace))

    def revision_named(self, obj: Obj, name: str) -> Obj:
        entry = revision(obj, name)
        assert entry is not None, f"revision {name} not in status.revisions: {obj['status'].get('revisions')}"
        return entry

    def assert_stayed_ready(
        self, current: str, since: int, *, passing: str | None = None, phase: str = "Ready"
    ) -> None:
        """Since it first had `phase` serving `current` (after position `since`, and after phase
        `passing` when given), every status had that phase: no flicker once a rollout ended.
        After a rollback the spec still names the rolled-back revision (Stalled), so that phase is
        Degraded while Ready stays True."""
        phases = self.phases.phases_after(phase, current, since=since, passing=passing)
        assert set(phases) == {phase}, f"phase left {phase} after serving {current}: {phases}"


@pytest.fixture(scope="module")
def life(api: client.ApiClient, crd: None, kubectl: Kubectl, start_operator: Any) -> Iterator[Life]:
    story_ns = environment.create(api, "life")
    operator = start_operator(namespaces=[story_ns.name])
    index = Index(api, story_ns.name, NAME)
    state = Life(story_ns.name, index, operator, kubectl, Chain(), PhaseRecorder(index).start())
    try:
        yield state
    finally:
        state.phases.stop()
        if state.loop is not None:
            state.loop.stop()
        environment.delete(api, story_ns.name)


def search(host: str, port: int, vector: np.ndarray[Any, np.dtype[np.float32]], k: int) -> Obj:
    request = urllib.request.Request(f"http://{host}:{port}/v1/search",
                                     data=json.dumps({"vector": vector.tolist(), "k": k}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        result: Obj = json.loads(answer.read())
    return result


def answers(host: str, port: int, vector: np.ndarray[Any, np.dtype[np.float32]], k: int) -> Obj | None:
    """A search's answer, or None while the Service does not route yet (refused, reset)."""
    try:
        return search(host, port, vector, k)
    except OSError:  # urllib.error.URLError is one
        return None


def queries(count: int = 20, seed: int = 99) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Queries that are not rows of the index (so the exact answer is not just the row itself)."""
    return np.random.default_rng(seed).standard_normal((count, data.DIMENSION), dtype=np.float32)


def timestamp(value: str) -> float:
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def describe_events(kubectl: Kubectl, namespace: str) -> str:
    text = kubectl.run("describe", "faissindex", NAME, "-n", namespace).stdout
    assert "Events:" in text, text
    return text[text.index("Events:"):]


# --- story 1 -------------------------------------------------------------------------------------


def test_story_1_first_index_becomes_ready_reports_recall_and_p99_and_serves_exact_neighbours(
        life: Life, kubectl: Kubectl) -> None:
    with life.chain.story("story 1"):
        life.apply(spec(IVF))
        # The status (phase Building) is written before the Job is applied (the write order).
        building = life.index.wait(lambda o: (o.get("status") or {}).get("phase") == "Building"
                                   and life.index.build_jobs(), 120, "phase Building with its Job",
                                   alive=life.operator.check_running)
        candidate = building["status"]["candidateRevision"]
        assert life.index.build_jobs() == [f"{NAME}-build-{candidate}"]

        waited = kubectl.run("wait", "-n", life.namespace, f"faissindex/{NAME}", "--for=condition=Ready",
                             f"--timeout={BUILD_READY_SECONDS}s", timeout=BUILD_READY_SECONDS + 10)
        assert waited.stdout.strip() == f"faissindex.faiss.dev/{NAME} condition met"

        obj = life.index.wait_ready(60, alive=life.operator.check_running)
        status = obj["status"]
        assert status["currentRevision"] == candidate and status["indexType"] == "IVF"
        entry = life.revision_named(obj, candidate)
        assert entry["state"] == "Active"
        assert entry["metrics"]["vectors"] == data.COUNT and entry["metrics"]["k"] == 10
        # Every list searched: exact answers, so recall@10 is 1 up to ties in float32 distances.
        assert status["recall"] == entry["metrics"]["recall"] and status["recall"] >= 0.99
        assert status["p99LatencyMs"] == entry["metrics"]["p99LatencyMs"] and status["p99LatencyMs"] > 0
        ready = condition(obj, "Ready")
        assert ready is not None and ready["status"] == "True" and ready["reason"] == "Serving"
        assert life.index.build_jobs() == [f"{NAME}-build-{candidate}"]

        lines = kubectl.run("get", "faissindex", NAME, "-n", life.namespace).stdout.splitlines()
        header, row = lines[0].split(), lines[1].split()
        assert header == ["NAME", "TYPE", "PHASE", "REVISION", "RECALL", "P99(MS)", "WEIGHT", "AGE"]
        assert row[:4] == [NAME, "IVF", "Ready", candidate]
        assert float(row[4]) == status["recall"] and float(row[5]) == status["p99LatencyMs"]

        host, port = life.index.service_address()
        pods = life.index.ready_pods()[candidate]
        wait_for(lambda: life.index.endpoint_addresses() == {p.status.pod_ip for p in pods}, 30,
                 "the Service's endpoint is the serving pod")
        vectors = data.vectors()
        first = queries()[0]
        wait_for(lambda: answers(host, port, first, 10), 30, f"a search through the Service {host}:{port}")
        for query in queries():
            answer = search(host, port, query, 10)
            ids, distances = data.exact_neighbours(vectors, query, 10)
            assert answer["ids"] == ids
            assert answer["distances"] == pytest.approx(distances, rel=1e-4, abs=1e-5)
        life.chain.values["ivf"] = candidate


# --- story 2 (and the start of story 3's client) ---------------------------------------------


def test_story_2_migration_ivf_to_hnsw_by_canary_then_the_old_deployment_goes_after_the_delay(
        life: Life, kubectl: Kubectl) -> None:
    with life.chain.story("story 2"):
        ivf = life.chain.values["ivf"]
        host, port = life.index.service_address()
        life.loop = SearchLoop(host, port, queries(50, seed=5), k=5).start()

        since = life.phases.mark()
        life.apply(spec(HNSW))
        obj = life.index.wait(lambda o: (o.get("status") or {}).get("candidateRevision") not in (None, ivf),
                              60, "a candidate revision", alive=life.operator.check_running)
        hnsw = obj["status"]["candidateRevision"]

        def both_serving(o: Obj) -> bool:
            weight = ((o.get("status") or {}).get("rollout") or {}).get("actualWeight")
            return (weight is not None and 0 < weight < 100 and o["status"].get("currentRevision") == ivf
                    and set(life.index.ready_pods()) == {ivf, hnsw})
        canary = life.index.wait(both_serving, BUILD_READY_SECONDS, "weight between 0 and 100 with both serving",
                                 alive=life.operator.check_running)
        # 50% of 1 replica is 1 candidate replica beside the stable's 1: half of the ready pods.
        assert canary["status"]["rollout"]["actualWeight"] == 50 and canary["status"]["rollout"]["weight"] == 50
        assert canary["status"]["phase"] == "Progressing"
        assert life.index.build_jobs() == sorted([f"{NAME}-build-{ivf}", f"{NAME}-build-{hnsw}"])

        obj = life.index.wait_ready(ROLLOUT_SECONDS, alive=life.operator.check_running)
        promoted_at = time.time()
        assert obj["status"]["currentRevision"] == hnsw and obj["status"]["indexType"] == "HNSW"
        assert life.revision_named(obj, hnsw)["state"] == "Active"
        assert life.revision_named(obj, ivf)["state"] == "Retired"
        (scale_down,) = [s for s in obj["status"].get("scaleDowns") or [] if s["revision"] == ivf]
        after = timestamp(scale_down["after"])
        if promoted_at < after - 1:  # seen in time: the old revision still serves beside the new one
            assert set(life.index.deployments()) == {ivf, hnsw}
        wait_for(lambda: set(life.index.deployments()) == {hnsw}, 60, f"Deployment of {ivf} gone")
        gone_at = time.time()
        # `after` is stored to the second; the operator removes the Deployment once now >= after.
        assert gone_at >= after - 1.0, f"removed at {gone_at:.1f}, scale-down due at {after:.1f}"
        # Due scaleDownDelaySeconds after the promotion (seen here up to a few seconds late).
        delay = ROLLOUT["scaleDownDelaySeconds"]
        assert promoted_at + delay - 3 <= after <= promoted_at + delay + 1, (after, promoted_at)
        life.assert_stayed_ready(hnsw, since)

        events = describe_events(kubectl, life.namespace)
        for reason in ("PhaseBuilding", "PhaseProgressing", "PhaseReady"):
            assert reason in events, events
        life.chain.values["hnsw"] = hnsw


# --- story 5 -------------------------------------------------------------------------------------


def test_story_5_a_search_parameters_only_revision_failing_live_analysis_is_rolled_back_without_a_build(
        life: Life) -> None:
    with life.chain.story("story 5"):
        ivf, hnsw = life.chain.values["ivf"], life.chain.values["hnsw"]
        jobs = life.index.build_jobs()
        since = life.phases.mark()
        life.apply(spec(HNSW_EF1, analysis={"minRecall": 0.9}))

        def rolled_back(o: Obj) -> bool:
            entries = [r for r in (o.get("status") or {}).get("revisions") or [] if r["name"] not in (ivf, hnsw)]
            return (bool(entries) and entries[0]["state"] == "RolledBack" and o["status"].get("phase") == "Degraded"
                    and o["status"].get("observedGeneration") == o["metadata"]["generation"])
        obj = life.index.wait(rolled_back, ROLLOUT_SECONDS, "the efSearch-1 revision RolledBack",
                              alive=life.operator.check_running)
        (bad,) = [r for r in obj["status"]["revisions"] if r["name"] not in (ivf, hnsw)]
        assert bad["reason"] == "AnalysisFailed", bad
        assert "recall" in (bad.get("message") or "").lower(), bad
        assert bad["reusedFrom"] == hnsw and bad["artifact"] == life.revision_named(obj, hnsw)["artifact"]
        assert bad["config"]["efSearch"] == 1
        assert obj["status"]["currentRevision"] == hnsw and not obj["status"].get("candidateRevision")
        assert life.index.build_jobs() == jobs, "a search-parameters-only revision must not build"
        degraded = condition(obj, "Degraded")
        assert degraded is not None and degraded["status"] == "True" and degraded["reason"] == "RevisionRolledBack"
        assert bad["name"] in degraded["message"]

        # The stable takes all traffic again: only its pods behind the Service.
        wait_for(lambda: set(life.index.deployments()) == {hnsw}, 60, f"the canary {bad['name']} removed")
        stable_ips = {p.status.pod_ip for p in life.index.ready_pods()[hnsw]}
        wait_for(lambda: set(life.index.ready_pods()) == {hnsw}
                 and life.index.endpoint_addresses() == stable_ips, 60, "only the stable's pods behind the Service")
        # From the Ready that ended the rollback on, Ready stays (the stable was Ready before it too).
        assert condition(obj, "Ready")["status"] == "True"  # the stable serves on
        # A canary's rollback only removes the canary (the stable never moved): the phase goes from
        # Progressing straight to Degraded and stays there.
        life.assert_stayed_ready(hnsw, since, passing="Progressing", phase="Degraded")
        life.chain.values["ef1"] = bad["name"]


# --- story 7 -------------------------------------------------------------------------------------


def test_story_7_gitops_revert_to_a_retained_revision_rolls_back_to_its_artifact_without_a_job(
        life: Life) -> None:
    with life.chain.story("story 7"):
        ivf = life.chain.values["ivf"]
        jobs = life.index.build_jobs()
        since = life.phases.mark()
        life.apply(spec(IVF))  # the first spec again, as `git revert` would put it back
        obj = life.index.wait_ready(ROLLOUT_SECONDS, alive=life.operator.check_running)
        assert obj["status"]["currentRevision"] == ivf and obj["status"]["indexType"] == "IVF"
        assert life.revision_named(obj, ivf)["state"] == "Active"
        assert life.index.build_jobs() == jobs, "a retained revision comes back without a build"
        wait_for(lambda: set(life.index.deployments()) == {ivf}, 60, "only the IVF Deployment left")
        life.assert_stayed_ready(ivf, since)
        # Built, served and rolled back to as the restricted defaults ask, enforced by runc: from the
        # image, uid 65532, fsGroup 65532 (the artifacts claim's group), a read-only root.
        pods = life.index.ready_pods()[ivf]
        assert {(s.container_id.split("://")[0], s.image_id.startswith("sha256:"))
                for p in pods for s in p.status.container_statuses} == {("runc", True)}
        assert {(p.spec.security_context.run_as_user, p.spec.security_context.fs_group,
                 p.spec.containers[0].security_context.read_only_root_filesystem) for p in pods} == {(65532, 65532, True)}


# --- story 6 -------------------------------------------------------------------------------------


def awaiting_promotion(life: Life, candidate_not_in: set[str]) -> Obj:
    def check(o: Obj) -> bool:
        status = o.get("status") or {}
        rollout = status.get("rollout") or {}
        return (status.get("candidateRevision") not in (None, *candidate_not_in) and rollout.get("paused") is True
                and rollout.get("pauseReason") == "AwaitingPromotion"
                and status.get("observedGeneration") == o["metadata"]["generation"])
    return life.index.wait(check, ROLLOUT_SECONDS, "a canary paused for faiss.dev/promote",
                           alive=life.operator.check_running)


def annotation_removed(life: Life, key: str) -> None:
    wait_for(lambda: key not in life.index.annotations(), 30, f"annotation {key} removed by the operator")


def test_story_6_admin_annotations_promote_abort_retry_and_rollback_previous(life: Life) -> None:
    with life.chain.story("story 6"):
        ivf, hnsw = life.chain.values["ivf"], life.chain.values["hnsw"]
        jobs = life.index.build_jobs()

        # promote at an indefinite pause
        life.apply(spec(HNSW, rollout=INDEFINITE))
        paused = awaiting_promotion(life, {ivf})
        assert paused["status"]["candidateRevision"] == hnsw and paused["status"]["phase"] == "Progressing"
        assert paused["status"]["rollout"]["step"] == 0
        assert set(life.index.deployments()) == {ivf, hnsw}
        life.index.annotate("faiss.dev/promote", "true")
        obj = life.index.wait_ready(ROLLOUT_SECONDS, alive=life.operator.check_running)
        assert obj["status"]["currentRevision"] == hnsw
        annotation_removed(life, "faiss.dev/promote")

        # abort: the canary goes, the stable stays
        life.apply(spec(HNSW_EF48, rollout=INDEFINITE))
        paused = awaiting_promotion(life, {hnsw})
        ef48 = paused["status"]["candidateRevision"]
        life.index.annotate("faiss.dev/abort", "true")
        # Degraded once the canary is out (Ready True; the spec still names
        # the aborted revision, so Stalled until the spec changes or faiss.dev/retry).
        obj = life.index.wait(lambda o: (revision(o, ef48) or {}).get("state") == "RolledBack"
                              and not o["status"].get("candidateRevision") and o["status"].get("phase") == "Degraded",
                              ROLLOUT_SECONDS, f"{ef48} RolledBack by faiss.dev/abort",
                              alive=life.operator.check_running)
        assert life.revision_named(obj, ef48)["reason"] == "Aborted"
        assert obj["status"]["currentRevision"] == hnsw and obj["status"]["phase"] == "Degraded"
        assert condition(obj, "Ready")["status"] == "True"
        annotation_removed(life, "faiss.dev/abort")
        wait_for(lambda: set(life.index.deployments()) == {hnsw}, 60, f"the aborted canary {ef48} removed")

        # retry: the same revision rolls out again (its artifact exists: no build)
        life.index.annotate("faiss.dev/retry", "true")
        paused = awaiting_promotion(life, {hnsw})
        assert paused["status"]["candidateRevision"] == ef48
        annotation_removed(life, "faiss.dev/retry")
        life.index.annotate("faiss.dev/promote", "true")
        obj = life.index.wait_ready(ROLLOUT_SECONDS, alive=life.operator.check_running)
        assert obj["status"]["currentRevision"] == ef48
        annotation_removed(life, "faiss.dev/promote")

        # rollback=previous: back to the revision that served before, no Job
        since = life.phases.mark()
        life.index.annotate("faiss.dev/rollback", "previous")
        obj = life.index.wait(lambda o: o["status"].get("currentRevision") == hnsw
                              and o["status"].get("phase") == "Degraded"
                              and (revision(o, ef48) or {}).get("state") == "RolledBack", ROLLOUT_SECONDS,
                              f"rolled back from {ef48} to {hnsw}", alive=life.operator.check_running)
        assert life.revision_named(obj, ef48)["reason"] == "RollbackRequested"
        annotation_removed(life, "faiss.dev/rollback")
        wait_for(lambda: set(life.index.deployments()) == {hnsw}, 60, f"the Deployment of {ef48} removed")
        assert life.index.build_jobs() == jobs, "no annotation here needs a build"
        # Checked by the last test of this module, so stories 3 and 10 still run if it fails.
        life.chain.values["after rollback=previous"] = life.phases.phases_after("Degraded", hnsw, since=since)


# --- story 3 -------------------------------------------------------------------------------------


def test_story_3_a_client_searching_the_service_through_migration_and_rollbacks_saw_no_failed_query(
        life: Life) -> None:
    with life.chain.story("story 3"):
        assert life.loop is not None
        tally = life.loop.stop()
        life.loop = None
        assert tally.failed == 0, f"{tally.failed} failed of {tally.ok + tally.failed}: {tally.failures}"
        # It really searched throughout: hundreds of answers, from more than one revision.
        assert tally.ok >= 200
        assert len(tally.revisions) >= 2, tally.revisions


# --- story 10 ------------------------------------------------------------------------------------


def test_story_10_delete_removes_children_and_artifacts_and_the_finalizer_does_not_hang(
        life: Life, api: client.ApiClient, kubectl: Kubectl) -> None:
    with life.chain.story("story 10"):
        obj = life.index.get()
        assert "faiss.dev/cleanup" in obj["metadata"].get("finalizers", [])
        artifacts = {environment.artifact_host_path(api, life.namespace, r["artifact"])
                     for r in obj["status"]["revisions"]}
        assert artifacts and all(path.is_dir() for path in artifacts), artifacts

        started = time.monotonic()
        kubectl.run("delete", "faissindex", NAME, "-n", life.namespace, "--timeout=90s", timeout=100)
        assert not life.index.exists()
        assert time.monotonic() - started < 90

        selector = f"faiss.dev/index={NAME}"
        apps, batch = client.AppsV1Api(api), client.BatchV1Api(api)
        core, policy = client.CoreV1Api(api), client.PolicyV1Api(api)

        def owned_children_left() -> list[str]:
            left = [f"Deployment/{d.metadata.name}" for d in
                    apps.list_namespaced_deployment(life.namespace, label_selector=selector).items]
            left += [f"Job/{j.metadata.name}" for j in
                     batch.list_namespaced_job(life.namespace, label_selector=f"{selector},faiss.dev/component=build").items]
            left += [f"Service/{s.metadata.name}" for s in
                     core.list_namespaced_service(life.namespace, label_selector=selector).items]
            left += [f"PodDisruptionBudget/{b.metadata.name}" for b in
                     policy.list_namespaced_pod_disruption_budget(life.namespace, label_selector=selector).items]
            left += [f"Pod/{p.metadata.name}" for p in
                     core.list_namespaced_pod(life.namespace, label_selector=f"{selector},faiss.dev/component=serving").items]
            return left
        wait_for(lambda: not owned_children_left(), 90, "every child of the deleted index gone")
        wait_for(lambda: not any(path.exists() for path in artifacts), 90,
                 f"artifact directories removed: {sorted(map(str, artifacts))}")
        life.operator.check_running()


def test_story_6_the_phase_stays_put_once_rollback_previous_has_ended(life: Life) -> None:
    """Every status version from the one that ended the admin rollback of story 6 on (Degraded, Ready
    True: the spec still names the rolled-back revision), through the removal of the rolled-back
    revision's Deployment after scaleDownDelaySeconds: no flip through RollingBack."""
    phases = life.chain.values.get("after rollback=previous")
    if phases is None:
        pytest.skip("story 6 did not reach its rollback")
    assert set(phases) == {"Degraded"}, f"phase changed after the rollback had ended: {phases}"
