"""Issue 20: decisions under real failures, on the real control plane with `faiss-operator run` as a
process (KUBECONFIG = the test cluster's). Each story failed before its fix.

2  A finished rollback leaves only its target behind the Service: with scaleDownDelaySeconds 600,
   the Service's endpoints are exactly the target's pods right after the rollback reports done.
3  Deleting a namespace while its FaissIndex builds, runs a canary or rolls back finishes within a minute:
   the operator, seeing the namespace Terminating, creates nothing more, says in a
   NamespaceTerminating Event which cleanup Job was not created and which artifacts stay, and
   releases the finalizer faiss.dev/cleanup (nolar/kopf#1088 replayed).
4  A canary blocked by a ResourceQuota says why in Progressing (the ReplicaSet's FailedCreate),
   in `kubectl describe` (argoproj/argo-rollouts#2050 replayed).
5  The artifacts claim deleted while serving pods mount it: Degraded names the claim and the pods
   holding it; no finished build pod pins it, so it goes once the index is deleted
   (FoundationDB/fdb-kubernetes-operator#764 replayed).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from e2e.harness.kubectl import Kubectl
from e2e.harness.operator import OperatorProcess
from e2e.harness.waiting import wait_for
from e2e.stories import environment
from e2e.stories.faissindex import Index, Obj, body, condition

pytestmark = pytest.mark.integration

NAME = "alerts"
IVF = {"indexType": "IVF", "config": {"nlist": 16, "nprobe": 16}}
HNSW = {"indexType": "HNSW", "config": {"m": 16, "efConstruction": 40, "efSearch": 32}}
HNSW_M8 = {"indexType": "HNSW", "config": {"m": 8, "efConstruction": 40, "efSearch": 32}}
# A replaced revision would keep serving for ten minutes, were it not for a rollback.
ROLLOUT: dict[str, Any] = {"steps": [{"weight": 50, "pauseSeconds": 1}], "scaleDownDelaySeconds": 600,
                           "progressDeadlineSeconds": 150}
INDEFINITE: dict[str, Any] = {**ROLLOUT, "steps": [{"weight": 50}]}  # waits at its step for an admin
BUILD_READY_SECONDS = 240  # a build Job and a serving pod, each a Python process importing FAISS, on 2 busy cores
NAMESPACE_GONE_SECONDS = 60  # the bound


def spec(index: dict[str, Any], *, rollout: dict[str, Any] | None = None, **sections: Any) -> Obj:
    return environment.index_spec(index, rollout=dict(rollout or ROLLOUT), **sections)


@dataclasses.dataclass
class Story:
    api: client.ApiClient
    namespace: str
    index: Index
    operator: OperatorProcess
    kubectl: Kubectl

    def apply(self, spec_: Obj) -> None:
        self.kubectl.apply(body(NAME, spec_, namespace=self.namespace))

    def serving(self, spec_: Obj) -> str:
        """Apply `spec_` and wait until its revision serves alone; its name."""
        self.apply(spec_)
        obj = self.index.wait_ready(BUILD_READY_SECONDS, alive=self.operator.check_running)
        current: str = obj["status"]["currentRevision"]
        return current

    def namespace_gone(self) -> bool:
        try:
            client.CoreV1Api(self.api).read_namespace(self.namespace)
        except ApiException as error:
            if error.status == 404:
                return True
            raise
        return False

    def delete_namespace_and_wait(self) -> None:
        environment.delete(self.api, self.namespace)
        wait_for(self.namespace_gone, NAMESPACE_GONE_SECONDS,
                 f"namespace {self.namespace} deleted within {NAMESPACE_GONE_SECONDS}s")


@pytest.fixture
def story(api: client.ApiClient, crd: None, kubectl: Kubectl, start_operator: Any) -> Iterator[Story]:
    story_ns = environment.create(api, "real")
    operator = start_operator(namespaces=[story_ns.name])
    state = Story(api, story_ns.name, Index(api, story_ns.name, NAME), operator, kubectl)
    try:
        yield state
    finally:
        if not state.namespace_gone():
            try:
                environment.delete(api, story_ns.name)
            except ApiException as error:
                if error.status != 404:
                    raise


def _pod_ips(index: Index, revision: str) -> set[str]:
    return {pod.status.pod_ip for pod in index.ready_pods().get(revision, [])}


def _namespace_events(api: client.ApiClient, namespace: str) -> list[client.CoreV1Event]:
    """The Events about Namespace `namespace` (kept in `default`: the namespace refuses new ones)."""
    items: list[client.CoreV1Event] = client.CoreV1Api(api).list_namespaced_event(
        "default", field_selector=f"involvedObject.name={namespace},involvedObject.kind=Namespace").items
    return items


def test_story_20_2_a_finished_rollback_leaves_only_its_target_behind_the_service(story: Story) -> None:
    ivf = story.serving(spec(IVF))
    hnsw = story.serving(spec(HNSW))
    # IVF is Retired but keeps serving for its scaleDownDelaySeconds (600 s) after the promotion.
    assert set(story.index.deployments()) == {ivf, hnsw}
    story.index.annotate("faiss.dev/rollback", ivf)
    obj = story.index.wait(
        lambda o: (o.get("status") or {}).get("currentRevision") == ivf and not o["status"].get("candidateRevision"),
        60, f"the rollback to {ivf} reports done", alive=story.operator.check_running)
    assert not obj["status"].get("scaleDowns")
    rolled_back = next(r for r in obj["status"]["revisions"] if r["name"] == hnsw)
    assert (rolled_back["state"], rolled_back["reason"]) == ("RolledBack", "RollbackRequested")
    # The HNSW pods' own drain delay covers the propagation: within seconds, not 600.
    target = _pod_ips(story.index, ivf)
    assert target
    wait_for(lambda: story.index.endpoint_addresses() == target, 30,
             f"the Service's endpoints are exactly the pods of {ivf}")
    assert set(story.index.deployments()) == {ivf}


def test_story_20_3_deleting_the_namespace_during_a_build_finishes_within_a_minute(story: Story) -> None:
    story.apply(spec(HNSW))
    story.index.wait(lambda o: (o.get("status") or {}).get("phase") == "Building" and story.index.build_jobs(),
                     120, "Building with its Job", alive=story.operator.check_running)
    story.delete_namespace_and_wait()
    (event, *_) = wait_for(lambda: [e for e in _namespace_events(story.api, story.namespace)
                                    if e.reason == "NamespaceTerminating" and f"{NAME}-cleanup-" in e.message],
                           30, "a NamespaceTerminating Event naming the cleanup Job")
    assert event.type == "Warning" and "was not created" in event.message, event.message
    assert "the artifact files it would remove stay on their claim" in event.message, event.message
    assert "Removed finalizer faiss.dev/cleanup" in story.operator.current_run_text()


def _released_saying_what_stays(story: Story) -> None:
    """The one Event of the finalizer's release names each revision's artifact directory."""
    (event, *_) = wait_for(lambda: [e for e in _namespace_events(story.api, story.namespace)
                                    if e.reason == "NamespaceTerminating" and "was released" in e.message],
                           30, "a NamespaceTerminating Event of the finalizer's release")
    assert event.type == "Warning", event.message
    assert event.message.count("stay on their claim") == event.message.count(f"{NAME}-cleanup-") >= 2, event.message


def test_story_20_3_deleting_the_namespace_during_a_canary_finishes_within_a_minute(story: Story) -> None:
    story.serving(spec(IVF))
    story.apply(spec(HNSW, rollout=INDEFINITE))
    story.index.wait(lambda o: ((o.get("status") or {}).get("rollout") or {}).get("pauseReason") == "AwaitingPromotion",
                     BUILD_READY_SECONDS, "the canary waiting at its step", alive=story.operator.check_running)
    story.delete_namespace_and_wait()
    _released_saying_what_stays(story)


def test_story_20_3_deleting_the_namespace_during_a_rollback_finishes_within_a_minute(story: Story) -> None:
    no_delay = {**ROLLOUT, "scaleDownDelaySeconds": 0}  # IVF's pods are gone once HNSW is promoted
    ivf = story.serving(spec(IVF, rollout=no_delay))
    story.serving(spec(HNSW, rollout=no_delay))
    wait_for(lambda: ivf not in story.index.deployments(), 60, f"the Deployment of {ivf} gone")
    story.index.annotate("faiss.dev/rollback", ivf)
    story.index.wait(lambda o: (o.get("status") or {}).get("phase") == "RollingBack", 30,
                     f"rolling back to {ivf}", alive=story.operator.check_running)
    story.delete_namespace_and_wait()
    _released_saying_what_stays(story)


def _quota(api: client.ApiClient, namespace: str) -> None:
    """At most one pod with resource requests: the serving pod of the first revision. Build pods
    request nothing (BestEffort), so builds are not counted."""
    client.CoreV1Api(api).create_namespaced_resource_quota(namespace, {
        "apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "serving-pods"},
        "spec": {"hard": {"pods": "1"}, "scopes": ["NotBestEffort"]},
    })


def test_story_20_4_a_canary_blocked_by_a_quota_says_why_in_progressing(story: Story) -> None:
    serving = {"replicas": 1, "resources": {"requests": {"cpu": "10m"}}}
    _quota(story.api, story.namespace)
    story.serving(spec(IVF, serving=serving))
    story.apply(spec(HNSW, rollout=INDEFINITE, serving=serving))

    def blocked(obj: Obj) -> bool:
        progressing = condition(obj, "Progressing")
        return progressing is not None and "exceeded quota" in progressing["message"]
    obj = story.index.wait(blocked, BUILD_READY_SECONDS, "Progressing names the quota",
                           alive=story.operator.check_running)
    candidate = obj["status"]["candidateRevision"]
    progressing = condition(obj, "Progressing")
    assert progressing is not None and progressing["reason"] == "CanaryStep"
    assert progressing["message"].startswith(
        f"step 1/1: 50% on {candidate}; 0/1 replicas of {candidate} ready: FailedCreate: "), progressing
    assert "serving-pods" in progressing["message"]
    described = story.kubectl.run("describe", "faissindex", NAME, "-n", story.namespace).stdout
    assert "exceeded quota" in described, described
    # The stable serves at full capacity meanwhile.
    assert obj["status"]["currentRevision"] in story.index.ready_pods()


def test_story_20_5_a_deleted_claim_names_its_holders_and_no_build_pod_pins_it(story: Story) -> None:
    current = story.serving(spec(IVF))
    core = client.CoreV1Api(story.api)
    # The build's pod went once its report was recorded: nothing finished mounts the claim.
    selector = f"faiss.dev/index={NAME},faiss.dev/component=build"
    wait_for(lambda: core.list_namespaced_pod(story.namespace, label_selector=selector).items == [], 30,
             "the finished build pod deleted")
    assert story.index.build_jobs() == [f"{NAME}-build-{current}"]  # the Job stays, with its conditions
    (pod,) = story.index.ready_pods()[current]
    core.delete_namespaced_persistent_volume_claim("faiss-artifacts", story.namespace)

    def says_so(obj: Obj) -> bool:
        degraded = condition(obj, "Degraded")
        return degraded is not None and degraded["reason"] == "ClaimTerminating"
    obj = story.index.wait(says_so, 60, "Degraded ClaimTerminating", alive=story.operator.check_running)
    degraded = condition(obj, "Degraded")
    assert degraded is not None and degraded["status"] == "True"
    assert degraded["message"].startswith(
        f"PersistentVolumeClaim faiss-artifacts (spec.artifacts.uri, held by pods {pod.metadata.name}) is being "
        f"deleted in namespace {story.namespace}"), degraded
    ready = condition(obj, "Ready")
    assert ready is not None and ready["status"] == "True"  # it still serves from the held claim

    # Once the index is gone, nothing holds the claim: it goes.
    story.kubectl.run("delete", "faissindex", NAME, "-n", story.namespace, "--wait=false")

    def claim_gone() -> bool:
        try:
            core.read_namespaced_persistent_volume_claim("faiss-artifacts", story.namespace)
        except ApiException as error:
            if error.status == 404:
                return True
            raise
        return False
    wait_for(claim_gone, 120, "the claim released once the index's pods are gone")

