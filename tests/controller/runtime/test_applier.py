"""The write order of one plan, and what counts as success, retry or failure (applier.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any, cast

import pytest
import urllib3

from faiss_operator.api import resource as api_resource
from faiss_operator.api import status as api_status
from faiss_operator.controller.decision import actions
from faiss_operator.controller.decision import observed
from faiss_operator.controller.runtime import applier, child_views, kube_api, observe
from tests.controller import builders
from tests.controller.recording_api import RecordingApi, api_error

FAST = applier.RetryPolicy(attempts=3, initial_seconds=0.001, max_seconds=0.002)
JOB = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"name": "alerts-build-5d41c2", "namespace": "search", "labels": {"faiss.dev/revision": "5d41c2"}},
}
OLD_DEPLOYMENT = {"metadata": {"name": "alerts-9a01be", "labels": {"faiss.dev/revision": "9a01be"}}}


def body(**metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": api_resource.API_VERSION,
        "kind": api_resource.KIND,
        "metadata": {"name": "alerts", "namespace": "search", "uid": "u1", "resourceVersion": "1", **metadata},
        "spec": builders.spec(),
    }


def seen(api: RecordingApi, children: observed.Children | None = None) -> observe.Observation:
    assert api.index is not None
    return observe.Observation(
        body=api.index, resource=api_resource.Resource.from_body(api.index), children=children or observed.Children()
    )


def run(
    api: RecordingApi, plan: actions.Plan, children: observed.Children | None = None
) -> tuple[list[str], list[tuple[str, str]], list[actions.Analyze]]:
    events: list[tuple[str, str]] = []
    started: list[actions.Analyze] = []

    def start(action: actions.Analyze) -> bool:
        started.append(action)
        return True

    sink = applier.Applier(
        api=cast(kube_api.KubeApi, api),
        post_event=lambda b, e: events.append((b["metadata"]["name"], e.reason)),
        retry=FAST,
    )
    lines = asyncio.run(sink.apply(seen(api, children), plan, start))
    return lines, events, started


STATUS = api_status.FaissIndexStatus(phase="Building")
ANALYZE = actions.Analyze(candidate="5d41c2", stable="9a01be", step=0, artifact="pvc://a/b", k=10)
EVERYTHING = actions.Plan(
    actions=(
        actions.RemoveAnnotation("faiss.dev/promote"),
        actions.Apply(JOB),
        actions.AddFinalizer(api_resource.FINALIZER),
        actions.Delete("apps/v1", "Deployment", "alerts-9a01be"),
        ANALYZE,
    ),
    status=STATUS,
    status_changed=True,
    status_patch={"phase": "Building"},
    events=(actions.Event("Normal", "BuildStarted", "building 5d41c2"),),
)


def test_a_plan_is_written_status_finalizer_children_annotation_then_events() -> None:
    api = RecordingApi(index=body())
    lines, events, started = run(api, EVERYTHING, child_views.children(deployments=[OLD_DEPLOYMENT]))
    assert api.calls == [  # the finalizer is written over the status write's resourceVersion: no read
        ("patch_status",),
        ("patch_index", {"metadata": {"finalizers": [api_resource.FINALIZER], "resourceVersion": "2"}}),
        ("apply", "Job", "alerts-build-5d41c2"),
        ("delete", "Deployment", "alerts-9a01be"),
        ("patch_index", {"metadata": {"annotations": {"faiss.dev/promote": None}}}),
    ]
    assert lines == [
        "Updated status of FaissIndex alerts phase=Building",
        "Added finalizer faiss.dev/cleanup to FaissIndex alerts",
        "Created Job alerts-build-5d41c2 revision=5d41c2",
        "Deleted Deployment alerts-9a01be revision=9a01be",
        "Started analysis of revision=5d41c2 step=0 stable=9a01be",
        "Removed annotation faiss.dev/promote from FaissIndex alerts",
    ]
    assert events == [("alerts", "BuildStarted")]
    assert started == [ANALYZE]


def test_an_unchanged_status_is_not_written() -> None:
    api = RecordingApi(index=body())
    plan = actions.Plan(actions=(actions.Apply(JOB),), status=STATUS, status_changed=False)
    lines, _, _ = run(api, plan, child_views.children(jobs=[{"metadata": {"name": "alerts-build-5d41c2"}}]))
    assert api.calls == [("apply", "Job", "alerts-build-5d41c2")]
    assert lines == ["Updated Job alerts-build-5d41c2 revision=5d41c2"]


def test_not_found_on_delete_and_on_the_annotation_patch_count_as_success() -> None:
    api = RecordingApi(index=body(), failures={"delete": [api_error(404, "Not Found")]})
    api.failures["patch_index"] = [api_error(404, "Not Found")]
    plan = actions.Plan(
        actions=(actions.Delete("batch/v1", "Job", "alerts-build-1"), actions.RemoveAnnotation("faiss.dev/abort")),
        status=STATUS,
        status_changed=False,
        events=(actions.Event("Normal", "Aborted", "x"),),
    )
    lines, events, _ = run(api, plan)
    assert lines == [
        "Deleted Job alerts-build-1 revision=- (already gone)",
        "Removed annotation faiss.dev/abort from FaissIndex alerts",
    ]
    assert events == [("alerts", "Aborted")]


def test_conflicts_and_server_errors_are_retried() -> None:
    api = RecordingApi(index=body(), failures={"apply": [api_error(409, "Conflict"), api_error(503, "Unavailable")]})
    lines, _, _ = run(api, actions.Plan(actions=(actions.Apply(JOB),), status=STATUS, status_changed=False))
    assert api.calls == [("apply", "Job", "alerts-build-5d41c2")] * 3
    assert lines == ["Created Job alerts-build-5d41c2 revision=5d41c2"]


def test_a_refused_write_stops_the_plan_before_later_writes_and_events() -> None:
    api = RecordingApi(index=body(), failures={"apply": [api_error(403, "Forbidden", "jobs is forbidden")]})
    with pytest.raises(Exception) as caught:
        run(api, EVERYTHING)
    assert kube_api.describe(caught.value) == "403 Forbidden: jobs is forbidden"
    assert [call[0] for call in api.calls] == ["patch_status", "patch_index", "apply"]


def test_retries_end_after_the_policy_s_attempts() -> None:
    api = RecordingApi(index=body(), failures={"patch_status": [api_error(500, "Internal Server Error")] * 5})
    with pytest.raises(Exception) as caught:
        run(api, actions.Plan(actions=(), status=STATUS, status_changed=True, status_patch={"phase": "Building"}))
    assert kube_api.describe(caught.value).startswith("500 Internal Server Error")
    assert api.calls == [("patch_status",)] * FAST.attempts


def test_a_finalizer_removal_rereads_after_a_conflict() -> None:
    api = RecordingApi(index=body(finalizers=[api_resource.FINALIZER, "other/keep"]))
    api.failures["patch_index"] = [api_error(409, "Conflict")]
    plan = actions.Plan(actions=(actions.RemoveFinalizer(api_resource.FINALIZER),), status=STATUS, status_changed=False)
    lines, _, _ = run(api, plan)
    assert [call[0] for call in api.calls] == ["patch_index", "get_index", "patch_index"]
    assert api.index is not None and api.index["metadata"]["finalizers"] == ["other/keep"]
    assert lines == ["Removed finalizer faiss.dev/cleanup from FaissIndex alerts"]


def test_a_finalizer_added_over_a_stale_cached_copy_is_written_again_over_a_fresh_read() -> None:
    api = RecordingApi(index=body())
    cached = seen(api)  # resourceVersion 1
    api.index = {**body(finalizers=["other/keep"]), "metadata": {**body()["metadata"], "finalizers": ["other/keep"]}}
    api._bump()  # someone else's write since: resourceVersion 2
    plan = actions.Plan(actions=(actions.AddFinalizer(api_resource.FINALIZER),), status=STATUS, status_changed=False)
    sink = applier.Applier(api=cast(kube_api.KubeApi, api), post_event=lambda b, e: None, retry=FAST)
    lines = asyncio.run(sink.apply(cached, plan, lambda a: False))
    assert api.calls == [
        ("patch_index", {"metadata": {"finalizers": [api_resource.FINALIZER], "resourceVersion": "1"}}),  # 409
        ("get_index", "alerts"),
        ("patch_index", {"metadata": {"finalizers": ["other/keep", api_resource.FINALIZER], "resourceVersion": "2"}}),
    ]
    assert api.index is not None and api.index["metadata"]["finalizers"] == ["other/keep", api_resource.FINALIZER]
    assert lines == ["Added finalizer faiss.dev/cleanup to FaissIndex alerts"]


def test_a_finalizer_removal_on_a_vanished_index_is_success() -> None:
    api = RecordingApi(index=body(finalizers=[api_resource.FINALIZER]))
    plan = actions.Plan(actions=(actions.RemoveFinalizer(api_resource.FINALIZER),), status=STATUS, status_changed=False)
    snapshot = seen(api)
    api.index = None
    sink = applier.Applier(api=cast(kube_api.KubeApi, api), post_event=lambda b, e: None, retry=FAST)
    lines = asyncio.run(sink.apply(snapshot, plan, lambda a: False))
    assert lines == ["Removed finalizer faiss.dev/cleanup from FaissIndex alerts"]


@pytest.mark.parametrize(
    ("error", "again"),
    [
        (api_error(409, "Conflict"), True),
        (api_error(429, "Too Many Requests"), True),
        (api_error(500, "Internal Server Error"), True),
        (api_error(503, "Service Unavailable"), True),
        (api_error(400, "Bad Request"), False),
        (api_error(403, "Forbidden"), False),
        (api_error(404, "Not Found"), False),
        (api_error(422, "Unprocessable Entity"), False),
        (urllib3.exceptions.ReadTimeoutError(None, "/apis", "read timed out"), True),
        (urllib3.exceptions.MaxRetryError(None, "/apis"), True),
        (ConnectionRefusedError(), True),
        (ValueError("a bug"), False),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_which_errors_are_tried_again(error: BaseException, again: bool) -> None:
    assert kube_api.retryable(error) is again


def _terminating(name: str) -> BaseException:
    """The 403 of the NamespaceLifecycle admission, with the body the API server sends."""
    error = api_error(403, "Forbidden")
    error.body = json.dumps(
        {
            "kind": "Status",
            "status": "Failure",
            "message": f'jobs "{name}" is forbidden: unable to create new content in namespace search '
            "because it is being terminated",
            "reason": "Forbidden",
            "details": {
                "name": name,
                "kind": "jobs",
                "causes": [{"reason": "NamespaceTerminating", "message": "namespace search is being terminated"}],
            },
            "code": 403,
        }
    )
    return error


CLEANUP_JOB = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"name": "alerts-cleanup-5d41c2", "namespace": "search", "labels": {"faiss.dev/component": "cleanup"}},
}


def test_a_namespace_being_deleted_skips_the_objects_it_refuses_says_so_and_still_releases_the_finalizer() -> None:
    api = RecordingApi(
        index=body(finalizers=[api_resource.FINALIZER], deletionTimestamp="2026-12-07T03:00:00Z"),
        failures={"apply": [_terminating("alerts-cleanup-5d41c2")]},
    )
    plan = actions.Plan(
        actions=(
            actions.Delete("apps/v1", "Deployment", "alerts-9a01be"),
            actions.Apply(CLEANUP_JOB),
            actions.RemoveFinalizer(api_resource.FINALIZER),
        ),
        status=STATUS,
        status_changed=False,
        events=(actions.Event("Normal", "PhaseFailed", "phase Degraded -> Failed"),),
    )
    lines, events, _ = run(api, plan, child_views.children(deployments=[OLD_DEPLOYMENT]))
    assert lines == [
        "Deleted Deployment alerts-9a01be revision=9a01be",
        "Skipped Job alerts-cleanup-5d41c2: namespace search is being deleted",
        "Removed finalizer faiss.dev/cleanup from FaissIndex alerts",
    ]
    assert api.index is not None and api.index["metadata"]["finalizers"] == []
    # on the Namespace (whose Events live in the operator's namespace) only: the namespace being
    # deleted would refuse the FaissIndex's (and Kopf would retry each for a minute)
    assert events == [("search", "NamespaceTerminating")]


def test_in_a_namespace_seen_terminating_the_plans_events_go_to_the_namespace() -> None:
    api = RecordingApi(index=body(finalizers=[api_resource.FINALIZER]))
    release = actions.Event("Warning", "NamespaceTerminating", "namespace search is being deleted ...")
    plan = actions.Plan(
        actions=(actions.RemoveFinalizer(api_resource.FINALIZER),), status=STATUS, status_changed=False, events=(release,)
    )
    posted: list[tuple[str, str, actions.Event]] = []
    sink = applier.Applier(
        api=cast(kube_api.KubeApi, api), post_event=lambda b, e: posted.append((b["kind"], b["metadata"]["name"], e)),
        retry=FAST,
    )
    terminating = seen(api, observed.Children(namespace_terminating=True))
    lines = asyncio.run(sink.apply(terminating, plan, lambda a: False))
    assert lines == ["Removed finalizer faiss.dev/cleanup from FaissIndex alerts"]
    assert posted == [("Namespace", "search", release)]
    assert api.index is not None and api.index["metadata"]["finalizers"] == []


def test_a_faissindex_gone_while_its_cached_copy_stayed_stops_the_pass_without_writing() -> None:
    # A watch stream stopped with its namespace may never deliver the FaissIndex's deletion.
    api = RecordingApi(index=body(), failures={"patch_status": [api_error(404, "Not Found")]})
    status_plan = actions.Plan(actions=(actions.Apply(CLEANUP_JOB),), status=STATUS, status_changed=True,
                               status_patch={"phase": "Building"})  # fmt: skip
    sink = applier.Applier(api=cast(kube_api.KubeApi, api), post_event=lambda b, e: None, retry=FAST)
    with pytest.raises(applier.IndexGone, match="FaissIndex search/alerts is gone"):
        asyncio.run(sink.apply(seen(api), status_plan, lambda a: False))
    observation = seen(api)
    api.index = None
    finalizer_plan = actions.Plan(actions=(actions.AddFinalizer(api_resource.FINALIZER),), status=STATUS, status_changed=False)
    with pytest.raises(applier.IndexGone):
        asyncio.run(sink.apply(observation, finalizer_plan, lambda a: False))
    assert [call[0] for call in api.calls] == ["patch_status", "patch_index"]


def test_the_event_of_a_skipped_cleanup_says_the_files_stay() -> None:
    api = RecordingApi(index=body(), failures={"apply": [_terminating("alerts-cleanup-5d41c2")]})
    posted: list[actions.Event] = []
    sink = applier.Applier(api=cast(kube_api.KubeApi, api), post_event=lambda b, e: posted.append(e), retry=FAST)
    plan = actions.Plan(actions=(actions.Apply(CLEANUP_JOB),), status=STATUS, status_changed=False)
    asyncio.run(sink.apply(seen(api), plan, lambda a: False))
    assert posted[0] == actions.Event(
        "Warning",
        "NamespaceTerminating",
        "namespace search is being deleted and accepts no new objects: Job alerts-cleanup-5d41c2 was not created; "
        "the artifact files it would remove stay on their claim (they go with the claim if it is deleted too)",
    )


def test_a_forbidden_write_for_another_reason_still_stops_the_plan() -> None:
    api = RecordingApi(index=body(), failures={"apply": [api_error(403, "Forbidden", "jobs is forbidden: quota")]})
    with pytest.raises(Exception) as caught:
        run(api, actions.Plan(actions=(actions.Apply(CLEANUP_JOB),), status=STATUS, status_changed=False))
    assert not kube_api.is_namespace_terminating(caught.value)
    assert kube_api.is_namespace_terminating(_terminating("x"))
    older = api_error(403, "Forbidden", "unable to create new content in namespace a because it is being terminated")
    assert kube_api.is_namespace_terminating(older)
