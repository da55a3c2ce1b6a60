"""Fixtures for tests that need a real S3 server: versitygw on the host's loopback.

Import the fixtures into a folder's conftest.py. Without the versitygw binary (built by `make
k8s` into the cached bin directory) these tests skip with that reason, and fail in CI, which
builds it first.
"""

from __future__ import annotations

import itertools
import os
import pathlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from e2e.harness import objectstore
from faiss_operator.sources import s3

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_buckets = itertools.count()


def require_binary(bin_dir: pathlib.Path | None = None) -> None:
    """Skip without versitygw on a developer's machine; fail in CI (CI set), which builds it, so
    CI never passes by silently skipping the S3 tests."""
    reason = objectstore.missing_reason(bin_dir)
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"no S3 server in CI: {reason}", pytrace=False)
    pytest.skip(f"no S3 server: {reason}")


def _start(root: pathlib.Path) -> objectstore.ObjectStore:
    require_binary()
    store = objectstore.ObjectStore(
        root=root / "data", host="127.0.0.1", port=objectstore.free_port(), log=root / "versitygw.log",
    )
    store.start()
    return store


@pytest.fixture(scope="session")
def object_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[objectstore.ObjectStore]:
    """One store for the session; tests that stop it use `private_object_store`."""
    store = _start(tmp_path_factory.mktemp("versitygw"))
    yield store
    store.stop()


@pytest.fixture
def private_object_store(tmp_path: pathlib.Path) -> Iterator[objectstore.ObjectStore]:
    store = _start(tmp_path / "versitygw")
    yield store
    store.stop()


def settings_for(store: objectstore.ObjectStore, *, attempts: int = 2) -> s3.Settings:
    return s3.Settings.from_environment(store.environment(), attempts=attempts)


def client_for(store: objectstore.ObjectStore) -> "S3Client":
    return s3.client(settings_for(store), environ=store.environment())


def new_bucket(store: objectstore.ObjectStore) -> str:
    name = f"test-{next(_buckets)}"
    boto3_client = client_for(store)
    boto3_client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_env(object_store: objectstore.ObjectStore, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The session store's variables, also set in this process's environment for the test."""
    environment = object_store.environment()
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return environment


@pytest.fixture
def bucket(object_store: objectstore.ObjectStore) -> str:
    """A new, empty bucket in the session store."""
    return new_bucket(object_store)


__all__ = ["bucket", "object_store", "private_object_store", "s3_env"]
