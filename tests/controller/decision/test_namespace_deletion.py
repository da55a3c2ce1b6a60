"""Story: the namespace of a FaissIndex is deleted while its canary runs (issue 20 item 3).

A namespace being deleted accepts no new object and deletes all it holds, pods first. The
operator must never make it wait: as soon as the namespace is seen Terminating (the FaissIndex
itself may not be marked deleted yet), it creates nothing, deletes its own children, says in
one Warning Event which artifacts stay where they are, and releases its finalizer; later passes
neither add the finalizer again nor repeat the Event.
"""

from __future__ import annotations

from faiss_operator.controller.decision import actions
from tests.controller import scenarios
from tests.controller.builders import Cluster, at, revision_of, spec, summarize_action, with_config

R1 = revision_of(spec())
R2 = revision_of(with_config(spec(), m=32))


def _released_during_canary(*, deleting: bool) -> None:
    cluster = scenarios.canary_step0()
    keys = [entry.artifact_key for entry in cluster.status.revisions]
    before = cluster.status
    cluster.namespace_terminating = True
    cluster.deleting = deleting

    plan = cluster.reconcile(at(100))

    assert [summarize_action(a) for a in plan.actions] == [
        ("Delete", "Deployment", f"alerts-{R1}"),
        ("Delete", "Deployment", f"alerts-{R2}"),
        ("Delete", "Job", f"alerts-build-{R1}"),
        ("Delete", "Job", f"alerts-build-{R2}"),
        ("Delete", "Service", "alerts"),
        ("Delete", "PodDisruptionBudget", "alerts"),
        ("RemoveFinalizer", "faiss.dev/cleanup"),
    ]
    left = "; ".join(
        f"Job alerts-cleanup-{key} was not created, the artifact files it would remove stay on their claim "
        f"faiss-artifacts under /alerts/{key} (they go with the claim if it is deleted too)"
        for key in keys
    )
    assert plan.events == (
        actions.Event(
            "Warning",
            "NamespaceTerminating",
            "namespace search is being deleted and accepts no new objects, the finalizer of FaissIndex alerts "
            f"was released without its cleanup: {left}",
        ),
    )
    assert (plan.status, plan.status_changed, plan.requeue_after) == (before, False, None)
    assert cluster.finalizers == ()
    assert sorted(cluster.objects) == []

    # The next pass (the namespace deletes the FaissIndex in its own time) does nothing more.
    again = cluster.reconcile(at(101))
    assert (again.actions, again.events, again.status_changed) == ((), (), False)


def test_a_namespace_seen_terminating_releases_the_finalizer_before_the_index_is_marked_deleted() -> None:
    _released_during_canary(deleting=False)


def test_a_deleted_index_in_a_terminating_namespace_creates_no_cleanup_job_and_says_what_stays() -> None:
    _released_during_canary(deleting=True)


def test_during_a_build_the_build_job_is_deleted_and_its_artifact_directory_named() -> None:
    cluster = scenarios.building()
    (key,) = [entry.artifact_key for entry in cluster.status.revisions]
    cluster.namespace_terminating = True

    plan = cluster.reconcile(at(5))

    assert [summarize_action(a) for a in plan.actions] == [
        ("Delete", "Job", f"alerts-build-{R1}"),
        ("RemoveFinalizer", "faiss.dev/cleanup"),
    ]
    assert plan.events == (
        actions.Event(
            "Warning",
            "NamespaceTerminating",
            "namespace search is being deleted and accepts no new objects, the finalizer of FaissIndex alerts "
            f"was released without its cleanup: Job alerts-cleanup-{key} was not created, the artifact files it "
            f"would remove stay on their claim faiss-artifacts under /alerts/{key} (they go with the claim if it "
            "is deleted too)",
        ),
    )
    assert not plan.status_changed and cluster.objects == {}


def test_an_index_that_never_built_says_there_was_nothing_to_remove() -> None:
    cluster = Cluster({**spec(), "indexType": "NoSuchType"}, finalizers=("faiss.dev/cleanup",), namespace_terminating=True)

    plan = cluster.reconcile(at(5))

    assert [summarize_action(a) for a in plan.actions] == [("RemoveFinalizer", "faiss.dev/cleanup")]
    assert plan.events == (
        actions.Event(
            "Normal",
            "NamespaceTerminating",
            "namespace search is being deleted: the finalizer of FaissIndex alerts was released, "
            "it had no artifacts to remove",
        ),
    )
