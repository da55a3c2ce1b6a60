"""A real local control plane for the integration tier, started once per test session.

The programs come from `make k8s`; the image every pod and the operator run from (under runc)
comes from `make image`, rebuilt here when the code changed (a no-op otherwise). If they are missing or the cluster cannot start, the tier is
skipped with the reason on a developer's machine and fails with the reason in CI (CI set), so CI
never passes by silently skipping it. With E2E_KUBECONFIG set (`make e2e-kind`), the tests use
that cluster instead (e2e/harness/external.py); only the stories that run the operator inside the
cluster are meant for it.
"""

from __future__ import annotations

import fcntl
import os
import pathlib
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from e2e.harness import cluster as cluster_mod
from e2e.harness import external
from e2e.harness import kubectl as kubectl_mod
from e2e.harness import operator as operator_mod
from e2e.harness import paths
from e2e.harness.waiting import wait_for

CRD_FILE = paths.REPO_ROOT / "crds" / "faissindexes.faiss.dev.yaml"
CRD_NAME = "faissindexes.faiss.dev"
# Operators started by tests; a failing test's report gets the tail of their logs.
RUNNING_OPERATORS: list[operator_mod.OperatorProcess] = []
OPERATOR_LOG_LINES = 200
# Short timings so a story's canary is measured within a second of its pods being ready.
OPERATOR_ARGS = ["--analysis-interval", "1", "--analysis-timeout", "15"]


def unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"local control plane unavailable in CI: {reason}", pytrace=False)
    pytest.skip(f"local control plane unavailable: {reason}")


@pytest.fixture(scope="session")
def control_plane_programs() -> None:
    """Skip (developer) or fail (CI) unless `make k8s` has built the programs (or E2E_KUBECONFIG is set)."""
    problem = None if external.kubeconfig() else paths.build_problem()
    if problem:
        unavailable(problem)


IMAGE = operator_mod.DEFAULT_IMAGE
# Held while the image builds, so two test sessions (or a `make image`) never build it at once.
IMAGE_LOCK = pathlib.Path("/tmp/faiss-image.lock")


@pytest.fixture(scope="session")
def project_image() -> None:
    """The image `make image` builds, current with the code (hack/image/build.sh is a no-op when
    nothing changed): the local cluster runs the operator, the build Jobs and the serving pods from
    it under runc. Skip (developer) or fail (CI) when it cannot be built."""
    if shutil.which("podman") is None or shutil.which("runc") is None:
        unavailable("podman and runc are not installed (`make image` installs them)")
    with IMAGE_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        built = subprocess.run([str(paths.REPO_ROOT / "hack" / "image" / "build.sh"), IMAGE],
                               capture_output=True, text=True, check=False)
    if built.returncode != 0:
        unavailable(f"`make image` failed:\n{built.stderr[-3000:]}")


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
            control_plane_programs: None) -> Iterator[cluster_mod.Cluster]:
    given = external.kubeconfig()
    if given:
        yield external.ExternalCluster(given)  # type: ignore[misc]
        return
    request.getfixturevalue("project_image")  # the local cluster runs its pods from it
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


def condition_true(obj: object, type_: str) -> bool:
    status = getattr(obj, "status", None)
    return any(c.type == type_ and c.status == "True" for c in (getattr(status, "conditions", None) or []))


@pytest.fixture(scope="session")
def crd(api: client.ApiClient) -> None:
    """The generated CRD, applied (or replaced) and Established, its API served."""
    extensions = client.ApiextensionsV1Api(api)
    body = yaml.safe_load(CRD_FILE.read_text())
    try:
        extensions.create_custom_resource_definition(body)
    except ApiException as error:
        if error.status != 409:
            raise
        live = extensions.read_custom_resource_definition(CRD_NAME)
        body["metadata"]["resourceVersion"] = live.metadata.resource_version
        extensions.replace_custom_resource_definition(CRD_NAME, body)
    wait_for(lambda: condition_true(extensions.read_custom_resource_definition(CRD_NAME), "Established"),
             30, f"CRD {CRD_NAME} Established")
    group, version, plural = body["spec"]["group"], body["spec"]["versions"][0]["name"], body["spec"]["names"]["plural"]
    wait_for(lambda: client.CustomObjectsApi(api).list_cluster_custom_object(group, version, plural) is not None,
             30, "the FaissIndex API served")


@pytest.fixture(scope="session")
def kubectl(cluster: cluster_mod.Cluster) -> kubectl_mod.Kubectl:
    """kubectl from the build, with KUBECONFIG set to the test cluster's."""
    return kubectl_mod.Kubectl(cluster.kubeconfig, binary=cluster.bin_dir / "kubectl")


def new_namespace(api: client.ApiClient, prefix: str = "t") -> str:
    """A fresh namespace whose default ServiceAccount exists (pods can be created in it)."""
    core = client.CoreV1Api(api)
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    wait_for(lambda: _has_default_sa(core, name), 30, f"service account default in {name}")
    return name


OperatorFactory = Callable[..., operator_mod.OperatorProcess]


@pytest.fixture(scope="module")
def start_operator(cluster: cluster_mod.Cluster,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorFactory]:
    """Start `faiss-operator run` with KUBECONFIG = the test cluster's: from the image under runc
    (FAISS_E2E_OPERATOR_RUNTIME=process: the repository's program as a host process).

    `start_operator(namespaces=[...], args=[...], env={...})` returns the started process (flags:
    OPERATOR_ARGS, then `args`); every
    operator started is stopped when the module ends, and a failing test's report carries the tail
    of its log (section "operator log").
    """
    started: list[operator_mod.OperatorProcess] = []

    def start(*, namespaces: list[str], args: list[str] | None = None,
              env: dict[str, str] | None = None) -> operator_mod.OperatorProcess:
        log = pathlib.Path(tmp_path_factory.mktemp("operator")) / "operator.log"
        process = operator_mod.OperatorProcess(cluster.kubeconfig, log, namespaces=namespaces,
                                               args=[*OPERATOR_ARGS, *(args or [])], env=env)
        process.start()
        started.append(process)
        RUNNING_OPERATORS.append(process)
        return process
    yield start
    for process in started:
        process.stop()
        RUNNING_OPERATORS.remove(process)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed and RUNNING_OPERATORS:
        for process in RUNNING_OPERATORS:
            report.sections.append((f"operator log ({process.log}, last {OPERATOR_LOG_LINES} lines)",
                                    process.tail(OPERATOR_LOG_LINES)))
