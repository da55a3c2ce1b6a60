"""A real local control plane for the integration tier, started once per test session.

The programs come from `make k8s`. If they are missing or the cluster cannot start, the tier is
skipped with the reason on a developer's machine and fails with the reason in CI (CI set), so CI
never passes by silently skipping it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client

from e2e.harness import cluster as cluster_mod
from e2e.harness import paths
from e2e.harness.waiting import wait_for


def unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"local control plane unavailable in CI: {reason}", pytrace=False)
    pytest.skip(f"local control plane unavailable: {reason}")


@pytest.fixture(scope="session")
def control_plane_programs() -> None:
    """Skip (developer) or fail (CI) unless `make k8s` has built the programs."""
    problem = paths.build_problem()
    if problem:
        unavailable(problem)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory, control_plane_programs: None) -> Iterator[cluster_mod.Cluster]:
    c = cluster_mod.Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        c.up(timeout=180)
    except Exception as exc:  # noqa: BLE001 - any reason is reported, never swallowed
        unavailable(f"cluster did not start: {exc}")
    yield c
    c.down()


@pytest.fixture(scope="session")
def api(cluster: cluster_mod.Cluster) -> client.ApiClient:
    return cluster.api_client()


@pytest.fixture
def namespace(api: client.ApiClient) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(api)
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    wait_for(lambda: _has_default_sa(core, name), 30, f"service account default in {name}")
    yield name
    core.delete_namespace(name)


def _has_default_sa(core: client.CoreV1Api, namespace: str) -> bool:
    try:
        core.read_namespaced_service_account("default", namespace)
        return True
    except client.exceptions.ApiException:
        return False
