"""What the store says of a FaissIndex's s3:// source objects: one HEAD each, cached.

The revision hash covers an s3:// object's identity (its version id, else its ETag), so that a
new upload under the same key is a new revision (decision/revisions.py). Finding it out is I/O,
so it happens here and enters `decide()` as an observed input (`Children.source_objects`).

The HEAD is made with the credentials the FaissIndex's pods would use: the keys of the Secret
spec.objectStore.credentialsSecretRef names (read through the API server, never logged), or,
without a Secret, the operator's own identity (the SDK's default chain: IRSA, workload
identity, the operator's AWS_* environment). Endpoint, region and addressing style are the
index's, each field it leaves out taken from the operator's (FAISS_S3_*, Helm objectStore.*).

Cached per (FaissIndex, URI) with the version of what the user wrote (metadata.generation, which
every spec change moves, and the annotations), so a pass over an unchanged FaissIndex sends no
request (issue 21's idle pass), nor does the pass after the operator's own status write: a
change of the spec or of an annotation (`kubectl annotate faissindex/x
faiss.dev/recheck="$(date)" --overwrite`) looks again, and so does the first pass after
`recheck_seconds` (default 300 s), so an overwrite under the same key is noticed within that
time even when nothing else happens. A
failed HEAD (wrong credentials, no such key, the store unreachable) becomes the object's
`problem`, looked at again after `retry_seconds`; every request has a bounded timeout. But a
recheck that fails keeps the identity already seen for the same spec (logged): an outage of the
store then does not stop the build or rollout under way from being followed (a build that
needs the store fails on its own, with its reason), while a new spec whose source cannot be
described is refused with the reason.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import concurrent.futures
import dataclasses
import functools
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from faiss_operator.api import resource as api_resource
from faiss_operator.api import spec as api_spec
from faiss_operator.controller.decision import object_store, observed, revisions
from faiss_operator.controller.runtime import kube_api
from faiss_operator.sources import errors, s3

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

LOGGER = logging.getLogger("faiss_operator.controller")
Key = tuple[str, str]  # (namespace, FaissIndex name)
# (namespace, Secret name) -> the Secret's data (base64 values as the API returns them), None when absent.
SecretReader = Callable[[str, str], Mapping[str, str] | None]
# (URIs, how to reach the store, static keys or None for the default chain) -> what the store said, by URI.
Describe = Callable[[tuple[str, ...], s3.Settings, Mapping[str, str] | None], dict[str, observed.SourceObject]]

RECHECK_SECONDS = 300.0
RETRY_SECONDS = 15.0
CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 10.0
ATTEMPTS = 2
# The whole look (Secret and every HEAD) never holds a pass longer than this.
DEADLINE_SECONDS = 45.0
# HEADs run on threads of their own, never on the pool the API writes use: a store that does not
# answer then delays only the looks at source objects, not every index's status writes.
HEAD_THREADS = 4


@dataclasses.dataclass(frozen=True)
class _Seen:
    version: str  # of what the user wrote (written_version)
    found: observed.SourceObject
    at: float
    failing: bool = False  # the last recheck failed; `found` is the identity seen before


def written_version(resource: api_resource.Resource) -> str:
    """Moves with every change of the spec or of an annotation, not with status writes (nor with
    Kopf's own bookkeeping annotations)."""
    annotations = sorted((k, v) for k, v in resource.annotations.items() if not k.startswith("kopf."))
    canonical = json.dumps([resource.generation, annotations], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def identity(info: s3.ObjectInfo) -> str | None:
    """`versionId:<id>` on a versioned bucket, else `etag:<ETag>`; None when the store gave neither."""
    if info.version_id and info.version_id != "null":
        return f"versionId:{info.version_id}"
    return f"etag:{info.etag}" if info.etag else None


def describe(uris: tuple[str, ...], settings: s3.Settings, keys: Mapping[str, str] | None) -> dict[str, observed.SourceObject]:
    """HEAD each of `uris` (blocking; run in a thread): its identity or the problem, by URI."""
    try:
        client = _client(settings, tuple(sorted(keys.items())) if keys is not None else None)
    except Exception as error:  # a setting botocore refuses (the CRD's patterns let few through)
        problem = f"cannot make an S3 client for {settings.where}: {type(error).__name__}: {error}"
        return {uri: observed.SourceObject(problem=problem) for uri in uris}
    found: dict[str, observed.SourceObject] = {}
    for uri in uris:
        try:
            info = s3.head(client, s3.parse(uri), settings)
        except errors.SourceError as error:
            found[uri] = observed.SourceObject(problem=str(error))
        else:
            found[uri] = observed.SourceObject(identity=identity(info))
    return found


@functools.lru_cache(maxsize=64)
def _client(settings: s3.Settings, keys: tuple[tuple[str, str], ...] | None) -> S3Client:
    # One client per store and keys, kept: making one costs ~0.1 s of CPU (boto3 reads its
    # service models), which every recheck of every index would pay again. botocore's clients
    # are thread-safe; a rotated Secret is other keys, so another client.
    return s3.client(settings, environ=dict(keys) if keys is not None else None)


def store_settings(store: api_spec.ObjectStoreSpec | None, environ: Mapping[str, str]) -> s3.Settings:
    """How the operator reaches the index's store: the index's fields over the SDK's own
    environment, with short timeouts and few attempts (a pass waits on them)."""
    base = s3.Settings.from_environment(environ, attempts=ATTEMPTS)
    return dataclasses.replace(
        base,
        endpoint_url=(store.endpoint if store and store.endpoint else None) or base.endpoint_url,
        region=(store.region if store and store.region else None) or base.region,
        addressing_style=(store.addressing_style if store and store.addressing_style else None) or base.addressing_style,
        connect_timeout_seconds=CONNECT_TIMEOUT_SECONDS,
        read_timeout_seconds=READ_TIMEOUT_SECONDS,
    )


def secret_keys(data: Mapping[str, str] | None, *, namespace: str, name: str) -> Mapping[str, str]:
    """The static keys in a Secret's data; raises ValueError saying what is missing."""
    if data is None:
        raise ValueError(f"Secret {namespace}/{name} (spec.objectStore.credentialsSecretRef) does not exist")
    keys: dict[str, str] = {}
    for key in (object_store.KEY_ACCESS_KEY_ID, object_store.KEY_SECRET_ACCESS_KEY):
        if not data.get(key):
            raise ValueError(f"Secret {namespace}/{name} has no key {key} (it needs {object_store.KEY_ACCESS_KEY_ID} "
                             f"and {object_store.KEY_SECRET_ACCESS_KEY})")  # fmt: skip
        try:
            keys[key] = base64.b64decode(data[key], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise ValueError(f"Secret {namespace}/{name}: the value of {key} is not base64 of UTF-8 text") from None
    return keys


class SourceObjects:
    """The cache of what the store said, and the requests that fill it; one per operator."""

    def __init__(
        self,
        *,
        secrets: SecretReader,
        default_store: api_spec.ObjectStoreSpec | None,
        environ: Mapping[str, str],
        recheck_seconds: float = RECHECK_SECONDS,
        retry_seconds: float = RETRY_SECONDS,
        deadline_seconds: float = DEADLINE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        describe_objects: Describe = describe,
    ) -> None:
        self._secrets = secrets
        self._default_store = default_store
        self._environ = dict(environ)
        self._recheck = recheck_seconds
        self._retry = retry_seconds
        self._deadline = deadline_seconds
        self._clock = clock
        self._describe = describe_objects
        self._seen: dict[tuple[str, str, str], _Seen] = {}
        self._heads_pool = concurrent.futures.ThreadPoolExecutor(HEAD_THREADS, thread_name_prefix="source-head")
        self.heads = 0  # HEAD requests sent (one per URI looked at), for tests and metrics
        # Looks at the store (a Secret read and HEADs), each an await the pass waits on; an
        # `observe` answered from the cache awaits nothing.
        self.looks = 0

    async def observe(self, resource: api_resource.Resource) -> dict[str, observed.SourceObject] | None:
        """The s3:// source objects of `resource` by URI; None when it has none (or its spec does
        not parse: decide refuses it). Sends requests only for what the cache does not hold."""
        spec = resource.parsed_spec
        if isinstance(spec, api_resource.SpecError) or resource.deletion_timestamp is not None:
            return None
        uris = tuple(dict.fromkeys(revisions.source_uris(spec.source).values()))
        if not uris:
            self.forget((resource.namespace, resource.name))
            return None
        version = written_version(resource)
        now = self._clock()
        found: dict[str, observed.SourceObject] = {}
        stale: list[str] = []
        for uri in uris:
            seen = self._seen.get((resource.namespace, resource.name, uri))
            if seen is not None and seen.version == version and now - seen.at < self._ttl(seen):
                found[uri] = seen.found
            else:
                stale.append(uri)
        if stale:
            self.looks += 1
            fresh = await self._look(resource.namespace, spec, tuple(stale))
            at = self._clock()
            for uri, answer in fresh.items():
                key = (resource.namespace, resource.name, uri)
                before = self._seen.get(key)
                if answer.problem is not None and before is not None and before.version == version and before.found.problem is None:
                    LOGGER.warning("Kept the last identity of %s for FaissIndex %s/%s: %s", uri, resource.namespace,
                                   resource.name, answer.problem)  # fmt: skip
                    self._seen[key] = _Seen(version, before.found, at, failing=True)
                    found[uri] = before.found
                else:
                    self._seen[key] = _Seen(version, answer, at)
                    found[uri] = answer
        self._drop_others(resource.namespace, resource.name, uris)
        return {uri: found[uri] for uri in uris}

    def requeue_after(self, key: Key) -> float | None:
        """Seconds until a cached answer of `key` is due to be looked at again; None when none is held."""
        now = self._clock()
        due = [seen.at + self._ttl(seen) - now for (ns, name, _), seen in self._seen.items() if (ns, name) == key]
        return max(0.0, min(due)) if due else None

    def forget(self, key: Key) -> None:
        for entry in [entry for entry in self._seen if entry[:2] == key]:
            del self._seen[entry]

    def _ttl(self, seen: _Seen) -> float:
        return self._retry if seen.failing or seen.found.problem is not None else self._recheck

    def _drop_others(self, namespace: str, name: str, uris: tuple[str, ...]) -> None:
        for entry in [e for e in self._seen if e[:2] == (namespace, name) and e[2] not in uris]:
            del self._seen[entry]

    async def _look(self, namespace: str, spec: api_spec.FaissIndexSpec, uris: tuple[str, ...]) -> dict[str, observed.SourceObject]:
        store = object_store.resolve(spec.object_store, self._default_store)
        try:
            return await asyncio.wait_for(self._look_blocking(namespace, store, uris), timeout=self._deadline)
        except TimeoutError:
            where = store.endpoint if store and store.endpoint else "the object store"
            problem = f"{where} did not answer within {self._deadline:g} s"
            return {uri: observed.SourceObject(problem=problem) for uri in uris}

    async def _look_blocking(
        self, namespace: str, store: api_spec.ObjectStoreSpec | None, uris: tuple[str, ...]
    ) -> dict[str, observed.SourceObject]:
        keys: Mapping[str, str] | None = None
        try:
            settings = store_settings(store, self._environ)
            if store is not None and store.credentials_secret_ref is not None:
                name = store.credentials_secret_ref.name
                try:
                    data = await asyncio.to_thread(self._secrets, namespace, name)
                except Exception as error:  # the API server refused or could not be reached
                    raise ValueError(f"cannot read Secret {namespace}/{name}: {kube_api.describe(error)}") from None
                keys = secret_keys(data, namespace=namespace, name=name)
        except (ValueError, errors.SourceError) as error:
            return {uri: observed.SourceObject(problem=str(error)) for uri in uris}
        self.heads += len(uris)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._heads_pool, self._describe, uris, settings, keys)
