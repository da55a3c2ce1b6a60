"""Issue 9, section 3, story 8: the operator SIGKILLed while building, mid-canary and mid-rollback,
then started again, finishes what it was doing: no duplicate Job, no orphan child.

`faiss-operator run` runs from the image under runc (KUBECONFIG = the test cluster's;
e2e/harness/operator.py) and is killed with SIGKILL (`runc kill`), as a node failure or the OOM
killer would: nothing of it runs after the signal. The
three kills happen in order on the index `restarts`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client

from e2e.harness.kubectl import Kubectl
from e2e.harness.operator import OperatorProcess
from e2e.harness.waiting import wait_for
from e2e.stories import environment
from e2e.stories.chain import Chain
from e2e.stories.faissindex import Index, Obj, PhaseRecorder, body, revision

pytestmark = pytest.mark.integration

NAME = "restarts"
HNSW = {"indexType": "HNSW", "config": {"m": 16, "efConstruction": 40, "efSearch": 32}}
HNSW_EF48 = {"indexType": "HNSW", "config": {"m": 16, "efConstruction": 40, "efSearch": 48}}
# A long pause, so the kill lands inside the canary step, not after it.
ROLLOUT = {"steps": [{"weight": 50, "pauseSeconds": 8}], "scaleDownDelaySeconds": 3,
           "progressDeadlineSeconds": 150}
BUILD_READY_SECONDS = 240
ROLLOUT_SECONDS = 180


def spec(index: dict[str, Any]) -> Obj:
    return environment.index_spec(index, rollout=ROLLOUT)


@dataclasses.dataclass
class Restarts:
    namespace: str
    index: Index
    operator: OperatorProcess
    kubectl: Kubectl
    chain: Chain
    phases: PhaseRecorder

    def apply(self, spec_: Obj) -> None:
        self.kubectl.apply(body(NAME, spec_, namespace=self.namespace))

    def kill_and_restart(self) -> None:
        self.operator.kill()
        assert not self.operator.alive()
        self.operator.start()

    def orphans(self) -> list[str]:
        """Children whose revision is not in status.revisions, or that the index does not own."""
        obj = self.index.get()
        uid = obj["metadata"]["uid"]
        known = {r["name"] for r in obj["status"].get("revisions") or []}
        found = []
        children: list[Any] = [*self.index.deployments().values(), *self.index.jobs("build")]
        for child in children:
            owners = {o.uid for o in child.metadata.owner_references or []}
            rev = child.metadata.labels.get("faiss.dev/revision")
            if uid not in owners or rev not in known:
                found.append(f"{child.kind or type(child).__name__}/{child.metadata.name} revision={rev}")
        return found


@pytest.fixture(scope="module")
def restarts(api: client.ApiClient, crd: None, kubectl: Kubectl, start_operator: Any) -> Iterator[Restarts]:
    story_ns = environment.create(api, "kill")
    operator = start_operator(namespaces=[story_ns.name])
    index = Index(api, story_ns.name, NAME)
    phases = PhaseRecorder(index).start()
    try:
        yield Restarts(story_ns.name, index, operator, kubectl, Chain(), phases)
    finally:
        phases.stop()
        environment.delete(api, story_ns.name)


def test_story_8_killed_while_building_the_restarted_operator_finishes_with_the_same_job(
        restarts: Restarts) -> None:
    with restarts.chain.story("story 8 (building)"):
        restarts.apply(spec(HNSW))
        obj = restarts.index.wait(lambda o: (o.get("status") or {}).get("phase") == "Building"
                                  and restarts.index.build_jobs(), 120, "Building with its Job created",
                                  alive=restarts.operator.check_running)
        candidate = obj["status"]["candidateRevision"]
        jobs = restarts.index.build_jobs()
        assert jobs == [f"{NAME}-build-{candidate}"]
        restarts.kill_and_restart()

        obj = restarts.index.wait_ready(BUILD_READY_SECONDS, alive=restarts.operator.check_running)
        assert obj["status"]["currentRevision"] == candidate
        assert restarts.index.build_jobs() == jobs, "the restarted operator made another build Job"
        assert set(restarts.index.deployments()) == {candidate}
        assert restarts.orphans() == []
        restarts.chain.values["first"] = candidate


def test_story_8_killed_mid_canary_the_restarted_operator_completes_the_rollout(restarts: Restarts) -> None:
    with restarts.chain.story("story 8 (canary)"):
        first = restarts.chain.values["first"]
        jobs = restarts.index.build_jobs()
        restarts.apply(spec(HNSW_EF48))

        def mid_canary(o: Obj) -> bool:
            status = o.get("status") or {}
            rollout = status.get("rollout") or {}
            return (status.get("phase") == "Progressing" and rollout.get("mode") == "Canary"
                    and (rollout.get("actualWeight") or 0) > 0)
        obj = restarts.index.wait(mid_canary, ROLLOUT_SECONDS, "a canary step serving",
                                  alive=restarts.operator.check_running)
        candidate = obj["status"]["candidateRevision"]
        restarts.kill_and_restart()

        obj = restarts.index.wait_ready(ROLLOUT_SECONDS, alive=restarts.operator.check_running)
        assert obj["status"]["currentRevision"] == candidate
        assert (revision(obj, first) or {}).get("state") == "Retired"
        wait_for(lambda: set(restarts.index.deployments()) == {candidate}, 60, f"the Deployment of {first} gone")
        assert restarts.index.build_jobs() == jobs
        assert restarts.orphans() == []
        restarts.chain.values["second"] = candidate


def test_story_8_killed_mid_rollback_the_restarted_operator_completes_the_rollback(restarts: Restarts) -> None:
    with restarts.chain.story("story 8 (rollback)"):
        first, second = restarts.chain.values["first"], restarts.chain.values["second"]
        jobs = restarts.index.build_jobs()
        since = restarts.phases.mark()
        restarts.index.annotate("faiss.dev/rollback", "previous")
        restarts.index.wait(lambda o: (o.get("status") or {}).get("phase") == "RollingBack", 60,
                            "phase RollingBack", alive=restarts.operator.check_running)
        restarts.kill_and_restart()

        obj = restarts.index.wait(
            lambda o: o["status"].get("phase") == "Degraded" and o["status"].get("currentRevision") == first
            and (revision(o, second) or {}).get("state") == "RolledBack", ROLLOUT_SECONDS,
            f"rolled back to {first}", alive=restarts.operator.check_running)
        assert not obj["status"].get("candidateRevision")
        wait_for(lambda: "faiss.dev/rollback" not in restarts.index.annotations(), 30, "the annotation removed")
        wait_for(lambda: set(restarts.index.deployments()) == {first}, 60, f"the Deployment of {second} gone")
        assert restarts.index.build_jobs() == jobs, "a rollback never builds"
        assert restarts.orphans() == []
        # Degraded, Ready True: the spec still names the rolled-back revision (Stalled).
        phases = restarts.phases.phases_after("Degraded", first, since=since)
        assert set(phases) == {"Degraded"}, f"phase left Degraded after the rollback to {first} completed: {phases}"
        restarts.operator.check_running()


HNSW_EF64 = {"indexType": "HNSW", "config": {"m": 16, "efConstruction": 40, "efSearch": 64}}
# A step without pauseSeconds: the canary waits for faiss.dev/promote, so the edit lands mid-canary.
MANUAL = {**ROLLOUT, "steps": [{"weight": 50}]}


def _awaiting_promotion(candidate: str | None = None) -> Callable[[Obj], bool]:
    def check(o: Obj) -> bool:
        status = o.get("status") or {}
        rollout = status.get("rollout") or {}
        return (rollout.get("mode") == "Canary" and rollout.get("pauseReason") == "AwaitingPromotion"
                and candidate in (None, status.get("candidateRevision")))
    return check


def test_a_canary_whose_rollout_a_hand_edited_status_lost_rolls_out_again(restarts: Restarts) -> None:
    """Issue 16 item 5: a status edited while the operator is down, so that candidateRevision names
    the serving revision, leaves the canary in state Canary with no rollout. The restarted
    operator repairs it (back to Built, a StatusRepaired Warning) and rolls it out again from its
    first step, never touching what serves and making no move the transition tables do not list."""
    with restarts.chain.story("hand-edited status mid-canary"):
        first = restarts.chain.values["first"]
        jobs = restarts.index.build_jobs()
        restarts.apply(environment.index_spec(HNSW_EF64, rollout=MANUAL))
        obj = restarts.index.wait(_awaiting_promotion(), ROLLOUT_SECONDS, "the canary at its manual step",
                                  alive=restarts.operator.check_running)
        candidate = obj["status"]["candidateRevision"]
        restarts.operator.kill()
        client.CustomObjectsApi(restarts.index.api).patch_namespaced_custom_object_status(
            "faiss.dev", "v1alpha1", restarts.namespace, "faissindexes", NAME,
            {"status": {"candidateRevision": first}}, _content_type="application/merge-patch+json")  # fmt: skip
        restarts.operator.start()

        message = f"revision {candidate} is Canary outside a canary rollout; back to Built"
        wait_for(lambda: any(e.reason == "StatusRepaired" and e.type == "Warning" and e.message == message
                             for e in restarts.index.events()), 60, "the StatusRepaired Warning")  # fmt: skip
        obj = restarts.index.wait(_awaiting_promotion(candidate), ROLLOUT_SECONDS,
                                  "the canary at its manual step again", alive=restarts.operator.check_running)
        assert obj["status"]["currentRevision"] == first
        assert set(restarts.index.deployments()) == {first, candidate}
        restarts.index.annotate("faiss.dev/promote", "true")
        obj = restarts.index.wait_ready(ROLLOUT_SECONDS, alive=restarts.operator.check_running)
        assert obj["status"]["currentRevision"] == candidate
        assert (revision(obj, first) or {}).get("state") == "Retired"
        assert restarts.index.build_jobs() == jobs, "search-time parameters only: no build"
        assert not [e for e in restarts.index.events() if e.reason == "IllegalTransition"]
        assert restarts.orphans() == []
        restarts.operator.check_running()
