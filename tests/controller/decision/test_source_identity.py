"""An s3:// source's identity (version id, else ETag) is part of its revision: a new upload under
the same key builds a new revision and rolls it out; a store that cannot describe the object
holds what serves and says why (SourceUnavailable), whatever the reason."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from faiss_operator.api import resource as api_resource
from faiss_operator.controller.decision import actions, observed, revisions
from tests.controller.builders import NAME, SETTINGS, Cluster, Summary, at, report, spec, summarize

SOURCE = "s3://embeddings/alerts/latest.npy"
IDS = "s3://embeddings/alerts/ids.json"
STORE = {"endpoint": "http://store:7070", "region": "us-east-1", "addressingStyle": "path",
         "credentialsSecretRef": {"name": "faiss-s3"}}
DENIED = ("s3://embeddings/alerts/latest.npy on http://store:7070: reading the object's size failed: access denied "
          "(InvalidAccessKeyId); check the credentials")


def s3_spec(**source: str) -> dict[str, Any]:
    return spec(source={"uri": SOURCE, **source}, objectStore=STORE, artifacts={"uri": "s3://faiss-artifacts/search"})


def found(**identities: str) -> dict[str, observed.SourceObject]:
    """URI -> the store's answer; keys are `source`/`ids`, values the identity."""
    uris = {"source": SOURCE, "ids": IDS}
    return {uris[k]: observed.SourceObject(identity=v) for k, v in identities.items()}


def desired(wire: dict[str, Any], objects: dict[str, observed.SourceObject] | None) -> revisions.DesiredRevision:
    return revisions.desired_revision(api_resource.parse_spec(wire), SETTINGS, index_name=NAME, source_objects=objects)


def test_a_new_upload_under_the_same_key_is_a_new_revision_and_a_new_artifact() -> None:
    first, same, overwritten = (desired(s3_spec(), found(source=e)) for e in ("etag:aa", "etag:aa", "etag:bb"))
    assert first == same
    assert overwritten.name != first.name
    assert overwritten.artifact_key != first.artifact_key
    assert overwritten.artifact == f"s3://faiss-artifacts/search/alerts/{overwritten.artifact_key}"


def test_a_version_id_and_each_s3_uri_of_the_source_count() -> None:
    wire = s3_spec(idsUri=IDS)
    names = {
        desired(wire, found(source="versionId:1", ids="etag:i")).name,
        desired(wire, found(source="versionId:2", ids="etag:i")).name,
        desired(wire, found(source="versionId:1", ids="etag:j")).name,
    }
    assert len(names) == 3


def test_sources_off_the_store_keep_their_revision_names() -> None:
    wire = spec()  # pvc://
    assert desired(wire, {}) == desired(wire, None) == revisions.desired_revision(
        api_resource.parse_spec(wire), SETTINGS, index_name=NAME
    )


@pytest.mark.parametrize("objects, message", [
    ({SOURCE: observed.SourceObject(problem=DENIED)}, f"spec.source.uri {SOURCE}: {DENIED}"),
    ({}, f"spec.source.uri {SOURCE}: not described by the store yet"),
])  # fmt: skip
def test_an_object_the_store_did_not_describe_gives_no_revision(
    objects: dict[str, observed.SourceObject], message: str
) -> None:
    with pytest.raises(revisions.SourceUnavailableError) as error:
        desired(s3_spec(), objects)
    assert str(error.value) == message


def serving_from_store(identity: str | None) -> tuple[Cluster, str]:
    """Ready on the spec's revision; `identity` None: made by an operator version that did not
    read the objects' identity."""
    cluster = Cluster(s3_spec(), source_objects=found(source=identity) if identity is not None else None)
    cluster.reconcile(at(0))
    first = desired(cluster.wire, cluster.source_objects).name
    cluster.finish_job(first, message=report())
    cluster.reconcile(at(10))
    cluster.ready_all()
    cluster.reconcile(at(20))
    assert (cluster.status.phase, cluster.status.current_revision) == ("Ready", first)
    return cluster, first


def overwrite_builds_while_serving(cluster: Cluster, first: str, etag: str, now: datetime.datetime) -> actions.Plan:
    """The source object overwritten (a new `etag`): the pass at `now` builds a new revision while
    `first` serves; returns that pass's plan."""
    cluster.source_objects = found(source=etag)
    second = desired(cluster.wire, cluster.source_objects).name
    plan = cluster.reconcile(now)
    assert summarize(plan) == Summary(
        actions=(("Apply", "Job", f"alerts-build-{second}"),),
        phase="Building",
        current=first,
        candidate=second,
        rollout=None,
        revisions=((second, "Building"), (first, "Active")),
    )
    return plan


def test_an_overwritten_source_object_builds_a_new_revision_while_the_old_one_serves() -> None:
    cluster, first = serving_from_store("etag:aa")
    overwrite_builds_while_serving(cluster, first, "etag:bb", at(30))


def test_a_head_that_fails_holds_the_serving_revision_and_says_why() -> None:
    cluster, first = serving_from_store("etag:aa")
    before = {c.type: c for c in cluster.status.conditions}
    cluster.source_objects = {SOURCE: observed.SourceObject(problem=DENIED)}
    plan = cluster.reconcile(at(30))
    assert summarize(plan) == Summary(
        actions=(), phase="Degraded", current=first, candidate=None, rollout=None, revisions=((first, "Active"),)
    )
    conditions = {c.type: (c.status, c.reason, c.message) for c in plan.status.conditions}
    message = f"spec.source.uri {SOURCE}: {DENIED}"
    assert conditions["Stalled"] == ("True", "SourceUnavailable", message)
    assert conditions["Degraded"] == ("True", "SourceUnavailable", message)
    assert conditions["Ready"] == ("True", before["Ready"].reason, before["Ready"].message)
    assert [(e.type, e.reason, e.message) for e in plan.events] == [
        ("Warning", "SourceUnavailable", message), ("Normal", "PhaseDegraded", "phase Ready -> Degraded"),
    ]
    # The store answers again, with the object as it was: the same revision, nothing to build.
    cluster.source_objects = found(source="etag:aa")
    plan = cluster.reconcile(at(40))
    assert summarize(plan).actions == ()
    assert {c.type: (c.status, c.reason) for c in plan.status.conditions}["Stalled"] == ("False", "AsExpected")


def test_a_first_index_whose_source_the_store_cannot_describe_builds_nothing() -> None:
    cluster = Cluster(s3_spec(), source_objects={SOURCE: observed.SourceObject(problem="the store is unreachable")})
    plan = cluster.reconcile(at(0))
    assert [a for a in summarize(plan).actions if a[0] != "AddFinalizer"] == []
    conditions = {c.type: (c.status, c.reason) for c in plan.status.conditions}
    assert conditions == {
        "Stalled": ("True", "SourceUnavailable"),
        "Degraded": ("True", "SourceUnavailable"),
        "Reconciling": ("False", "SourceUnavailable"),
        "Ready": ("False", "NoServingRevision"),
    }


def test_an_upgrade_from_an_operator_that_did_not_read_identities_rebuilds_nothing_and_still_sees_an_overwrite() -> None:
    cluster, first = serving_from_store(None)
    assert cluster.status.revision(first) is not None and cluster.status.revision(first).source_objects is None
    # The upgraded operator reads the object's identity: the serving revision stays the spec's,
    # with the identity seen now recorded on it.
    cluster.source_objects = found(source="etag:aa")
    plan = cluster.reconcile(at(30))
    assert summarize(plan) == Summary(
        actions=(), phase="Ready", current=first, candidate=None, rollout=None, revisions=((first, "Active"),)
    )
    assert plan.status.revision(first) is not None
    assert plan.status.revision(first).source_objects == {"source.uri": "etag:aa"}
    cluster.reconcile(at(40))
    assert summarize(cluster.reconcile(at(50))).actions == ()
    # An overwrite after the upgrade is a new revision, built while the first serves.
    plan = overwrite_builds_while_serving(cluster, first, "etag:bb", at(60))
    second = desired(cluster.wire, cluster.source_objects).name
    assert plan.status.revision(second) is not None
    assert plan.status.revision(second).source_objects == {"source.uri": "etag:bb"}
