"""The operator's HEAD of an s3:// source, against a real S3 server (versitygw on loopback): the
object's identity with the index's credentials, one request per change of the FaissIndex (none
for a pass over an unchanged one), and every failure a one-line problem within a bounded time."""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from collections.abc import Mapping
from typing import Any

import pytest

from e2e.harness import objectstore
from faiss_operator.api import resource as api_resource
from faiss_operator.api import spec as api_spec
from faiss_operator.controller.decision import observed
from faiss_operator.controller.runtime import source_objects
from tests.controller.builders import make_resource, spec
from tests.s3_store import bucket, client_for, object_store, private_object_store, s3_env  # noqa: F401 (fixtures)

SECRET = "faiss-s3"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def store_spec(store: objectstore.ObjectStore, *, secret: bool = True) -> dict[str, Any]:
    fields: dict[str, Any] = {"endpoint": store.endpoint_url, "region": objectstore.REGION, "addressingStyle": "path"}
    if secret:
        fields["credentialsSecretRef"] = {"name": SECRET}
    return fields


def index(uri: str, store: objectstore.ObjectStore, *, generation: int = 1, secret: bool = True,
          annotations: dict[str, str] | None = None, **source: str) -> api_resource.Resource:  # fmt: skip
    wire = spec(source={"uri": uri, **source}, objectStore=store_spec(store, secret=secret))
    return make_resource(wire, generation=generation, annotations=annotations)


def secret_data(access_key_id: str, secret_access_key: str) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": base64.b64encode(access_key_id.encode()).decode(),
        "AWS_SECRET_ACCESS_KEY": base64.b64encode(secret_access_key.encode()).decode(),
    }


class Secrets:
    """The Secrets of namespace `search`, as the API server would answer `get`; counts the reads."""

    def __init__(self, data: Mapping[str, Mapping[str, str]]) -> None:
        self.data = dict(data)
        self.reads = 0

    def __call__(self, namespace: str, name: str) -> Mapping[str, str] | None:
        self.reads += 1
        return self.data.get(name) if namespace == "search" else None


def sources(store: objectstore.ObjectStore, *, secrets: Secrets | None = None, clock: Clock | None = None,
            **options: Any) -> source_objects.SourceObjects:  # fmt: skip
    keys = store.credentials
    return source_objects.SourceObjects(
        secrets=secrets or Secrets({SECRET: secret_data(keys.access_key_id, keys.secret_access_key)}),
        default_store=None, environ={}, clock=clock or Clock(), **options,
    )


def observe(objects: source_objects.SourceObjects, resource: api_resource.Resource) -> Any:
    return asyncio.run(objects.observe(resource))


def test_the_identity_is_the_etag_read_once_per_change_of_the_index(
    object_store: objectstore.ObjectStore, bucket: str  # noqa: F811
) -> None:
    client = client_for(object_store)
    client.put_object(Bucket=bucket, Key="v.npy", Body=b"first")
    uri = f"s3://{bucket}/v.npy"
    objects = sources(object_store)
    resource = index(uri, object_store)
    etag = client.head_object(Bucket=bucket, Key="v.npy")["ETag"].strip('"')
    assert observe(objects, resource) == {uri: observed.SourceObject(identity=f"etag:{etag}")}
    assert objects.heads == 1
    # A new upload under the same key; passes over the unchanged FaissIndex send no request.
    client.put_object(Bucket=bucket, Key="v.npy", Body=b"second, longer")
    for _ in range(3):
        assert observe(objects, resource) == {uri: observed.SourceObject(identity=f"etag:{etag}")}
    assert objects.heads == 1
    # A status write (Kopf's bookkeeping annotations too) is not a change of what the user wrote.
    assert observe(objects, index(uri, object_store, annotations={"kopf.faiss.dev/x": "1"})) == {
        uri: observed.SourceObject(identity=f"etag:{etag}")
    }
    assert objects.heads == 1
    # A change of the spec (generation) or of an annotation looks again.
    new_etag = client.head_object(Bucket=bucket, Key="v.npy")["ETag"].strip('"')
    assert new_etag != etag
    assert observe(objects, index(uri, object_store, annotations={"faiss.dev/recheck": "now"})) == {
        uri: observed.SourceObject(identity=f"etag:{new_etag}")
    }
    assert objects.heads == 2
    observe(objects, index(uri, object_store, generation=2, annotations={"faiss.dev/recheck": "now"}))
    assert objects.heads == 3


def test_an_unchanged_index_is_looked_at_again_after_the_recheck_interval(
    object_store: objectstore.ObjectStore, bucket: str  # noqa: F811
) -> None:
    client = client_for(object_store)
    client.put_object(Bucket=bucket, Key="v.npy", Body=b"first")
    uri = f"s3://{bucket}/v.npy"
    clock = Clock()
    objects = sources(object_store, clock=clock, recheck_seconds=300)
    resource = index(uri, object_store)
    observe(objects, resource)
    assert objects.requeue_after(("search", "alerts")) == 300
    client.put_object(Bucket=bucket, Key="v.npy", Body=b"overwritten")
    clock.now += 299
    observe(objects, resource)
    assert (objects.heads, objects.requeue_after(("search", "alerts"))) == (1, 1)
    clock.now += 1
    etag = client.head_object(Bucket=bucket, Key="v.npy")["ETag"].strip('"')
    assert observe(objects, resource) == {uri: observed.SourceObject(identity=f"etag:{etag}")}
    assert objects.heads == 2


def test_every_s3_uri_of_the_source_is_described_and_others_are_not_asked(
    object_store: objectstore.ObjectStore, bucket: str  # noqa: F811
) -> None:
    client = client_for(object_store)
    for key in ("v.npy", "ids.json"):
        client.put_object(Bucket=bucket, Key=key, Body=key.encode())
    objects = sources(object_store)
    resource = index(f"s3://{bucket}/v.npy", object_store, idsUri=f"s3://{bucket}/ids.json",
                           metadataUri="https://example.invalid/meta.jsonl")  # fmt: skip
    found = observe(objects, resource)
    assert sorted(found) == [f"s3://{bucket}/ids.json", f"s3://{bucket}/v.npy"]
    assert all(entry.identity and entry.identity.startswith("etag:") for entry in found.values())
    assert observe(objects, make_resource(spec())) is None
    assert objects.heads == 2


def test_without_a_secret_the_operator_uses_its_own_identity(
    object_store: objectstore.ObjectStore, bucket: str, s3_env: dict[str, str]  # noqa: F811
) -> None:
    client_for(object_store).put_object(Bucket=bucket, Key="v.npy", Body=b"x")
    secrets = Secrets({})
    objects = sources(object_store, secrets=secrets)
    resource = index(f"s3://{bucket}/v.npy", object_store, secret=False)
    (found,) = observe(objects, resource).values()
    assert found.problem is None and found.identity is not None
    assert secrets.reads == 0


@pytest.mark.parametrize("secret, problem", [
    (None, "Secret search/faiss-s3 (spec.objectStore.credentialsSecretRef) does not exist"),
    ({"AWS_ACCESS_KEY_ID": "eA=="}, "Secret search/faiss-s3 has no key AWS_SECRET_ACCESS_KEY "
                                    "(it needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"),
    ({"AWS_ACCESS_KEY_ID": "not base64!", "AWS_SECRET_ACCESS_KEY": "eA=="},
     "Secret search/faiss-s3: the value of AWS_ACCESS_KEY_ID is not base64 of UTF-8 text"),
])  # fmt: skip
def test_a_secret_that_cannot_give_keys_is_the_problem_and_no_head_is_sent(
    object_store: objectstore.ObjectStore, bucket: str, secret: dict[str, str] | None, problem: str  # noqa: F811
) -> None:
    objects = sources(object_store, secrets=Secrets({} if secret is None else {SECRET: secret}))
    resource = index(f"s3://{bucket}/v.npy", object_store)
    assert observe(objects, resource) == {f"s3://{bucket}/v.npy": observed.SourceObject(problem=problem)}
    assert objects.heads == 0


def test_wrong_credentials_and_a_missing_key_are_named(
    object_store: objectstore.ObjectStore, bucket: str  # noqa: F811
) -> None:
    uri = f"s3://{bucket}/absent.npy"
    resource = index(uri, object_store)
    (missing,) = observe(sources(object_store), resource).values()
    assert missing.identity is None
    assert missing.problem == f"{uri} on {object_store.endpoint_url}: reading the object's size failed: no such object (404)"
    client_for(object_store).put_object(Bucket=bucket, Key="v.npy", Body=b"x")
    resource = index(f"s3://{bucket}/v.npy", object_store)
    # A known access key with the wrong secret: versitygw answers an unknown access key with 404
    # (XAdminUserNotFound), which a HEAD cannot tell from a missing key.
    wrong_keys = secret_data(object_store.credentials.access_key_id, "not-the-secret")
    wrong = sources(object_store, secrets=Secrets({SECRET: wrong_keys}))
    (denied,) = observe(wrong, resource).values()
    assert denied.problem is not None and "access denied" in denied.problem, denied


def with_one_object(store: objectstore.ObjectStore) -> objectstore.ObjectStore:
    """The store with the bucket `bkt` holding `v.npy`."""
    client_for(store).create_bucket(Bucket="bkt")
    client_for(store).put_object(Bucket="bkt", Key="v.npy", Body=b"x")
    return store


def test_a_stopped_store_is_a_problem_within_the_timeout_then_looked_at_again(
    private_object_store: objectstore.ObjectStore,  # noqa: F811
) -> None:
    store = with_one_object(private_object_store)
    clock = Clock()
    objects = sources(store, clock=clock, retry_seconds=15)
    resource = index("s3://bkt/v.npy", store)
    store.stop()
    started = time.monotonic()
    (down,) = observe(objects, resource).values()
    assert time.monotonic() - started < source_objects.DEADLINE_SECONDS
    assert down.problem is not None and "the store is unreachable" in down.problem, down
    assert objects.requeue_after(("search", "alerts")) == 15
    store.start()
    assert observe(objects, resource) == {"s3://bkt/v.npy": down}  # not due yet: no request
    clock.now += 15
    (up,) = observe(objects, resource).values()
    assert up.problem is None and up.identity is not None


def test_a_recheck_that_fails_keeps_the_identity_seen_for_the_same_spec_but_a_new_spec_is_refused(
    private_object_store: objectstore.ObjectStore,  # noqa: F811
) -> None:
    store = with_one_object(private_object_store)
    clock = Clock()
    objects = sources(store, clock=clock, recheck_seconds=300, retry_seconds=15)
    resource = index("s3://bkt/v.npy", store)
    (seen,) = observe(objects, resource).values()
    assert seen.identity is not None
    store.stop()
    clock.now += 300
    assert observe(objects, resource) == {"s3://bkt/v.npy": seen}  # an outage: the build under way goes on
    assert (objects.heads, objects.requeue_after(("search", "alerts"))) == (2, 15)
    (refused,) = observe(objects, index("s3://bkt/v.npy", store, generation=2)).values()
    assert refused.problem is not None and "the store is unreachable" in refused.problem


def test_a_head_slower_than_the_deadline_is_a_problem_naming_the_store() -> None:
    store = api_spec.ObjectStoreSpec.model_validate({"endpoint": "http://127.0.0.1:9"})
    wire = spec(source={"uri": "s3://bkt/v.npy"}, objectStore=store.to_wire())
    resource = make_resource(wire)

    def hang(uris: tuple[str, ...], settings: Any, keys: Any) -> dict[str, observed.SourceObject]:
        time.sleep(1.0)
        return {}

    objects = source_objects.SourceObjects(
        secrets=Secrets({}), default_store=None, environ={}, deadline_seconds=0.2, describe_objects=hang,
    )
    found = asyncio.run(objects.observe(resource))
    assert found == {"s3://bkt/v.npy": observed.SourceObject(problem="http://127.0.0.1:9 did not answer within 0.2 s")}


def test_heads_run_on_threads_of_their_own_not_on_the_pool_the_api_writes_use() -> None:
    threads: list[str] = []

    def record(uris: tuple[str, ...], settings: Any, keys: Any) -> dict[str, observed.SourceObject]:
        threads.append(threading.current_thread().name)
        return {uri: observed.SourceObject(identity="etag:1") for uri in uris}

    objects = source_objects.SourceObjects(secrets=Secrets({}), default_store=None, environ={}, describe_objects=record)
    found = asyncio.run(objects.observe(make_resource(spec(source={"uri": "s3://bkt/v.npy"}))))
    assert found == {"s3://bkt/v.npy": observed.SourceObject(identity="etag:1")}
    assert len(threads) == 1 and threads[0].startswith("source-head"), threads


def test_looks_at_the_same_store_with_the_same_keys_share_one_client(
    object_store: objectstore.ObjectStore, bucket: str  # noqa: F811
) -> None:
    client_for(object_store).put_object(Bucket=bucket, Key="v.npy", Body=b"x")
    client_for(object_store).put_object(Bucket=bucket, Key="w.npy", Body=b"y")
    source_objects._client.cache_clear()
    before = source_objects._client.cache_info()
    for key, generation in (("v.npy", 1), ("w.npy", 1), ("v.npy", 2)):
        (seen,) = observe(sources(object_store), index(f"s3://{bucket}/{key}", object_store, generation=generation)).values()
        assert seen.identity is not None, seen
    after = source_objects._client.cache_info()
    assert (after.misses - before.misses, after.hits - before.hits) == (1, 2)
    # Other keys (a rotated Secret): another client.
    keys = object_store.credentials
    rotated = sources(object_store, secrets=Secrets({SECRET: secret_data(keys.access_key_id, "rotated")}))
    observe(rotated, index(f"s3://{bucket}/v.npy", object_store))
    assert source_objects._client.cache_info().misses - after.misses == 1
