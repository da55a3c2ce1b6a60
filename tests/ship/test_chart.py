"""charts/faiss-operator: linted and rendered by the helm the project builds, with the defaults
and with non-default values (namespaced RBAC, a ServiceMonitor, the artifacts claim, the seed's
values files), bad values refused by values.schema.json, every rendered object validated against
the Kubernetes 1.37 schemas, and the parts that must agree with the rest of the project kept equal:
the CRD, the RBAC rules of deploy/rbac.yaml, the image name, the index keys."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from faiss_operator.controller.decision import settings as operator_settings
from faiss_operator.controller.runtime import command as run_command
from faiss_operator.index import settings as index_settings

from tests.ship import chart_values

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "faiss-operator"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
KUBERNETES = "1.37.0"
NAMESPACE = "faiss-operator"
IMAGE = operator_settings.DEFAULT_IMAGE


def _helm() -> str:
    candidates = [os.environ.get("HELM", "")]
    printed = subprocess.run([str(ROOT / "hack" / "build-k8s.sh"), "--print"], capture_output=True, text=True)
    candidates.append(str(Path(printed.stdout.strip()) / "helm"))
    candidates.append(shutil.which("helm") or "")
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    if os.environ.get("CI"):
        pytest.fail("CI needs helm: `make test` builds it with hack/build-k8s.sh")
    pytest.skip("needs helm (hack/build-k8s.sh builds it)")


@pytest.fixture(scope="module")
def helm() -> str:
    return _helm()


def _template(
    helm: str, *args: str, values: dict[str, Any] | None = None, tmp: Path | None = None
) -> subprocess.CompletedProcess[str]:
    command = [helm, "template", "faiss-operator", str(CHART), "--namespace", NAMESPACE]
    command += ["--kube-version", KUBERNETES]
    if values is not None:
        assert tmp is not None
        path = tmp / "values.yaml"
        path.write_text(yaml.safe_dump(values))
        command += ["--values", str(path)]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=120)


def _render(helm: str, tmp: Path, values: dict[str, Any] | None = None, *args: str) -> list[dict[str, Any]]:
    run = _template(helm, *args, values=values, tmp=tmp)
    assert run.returncode == 0, run.stderr
    return [d for d in yaml.safe_load_all(run.stdout) if d]


def _one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind]
    return found


def _container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (container,) = _one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    return container


def _env(objects: list[dict[str, Any]]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in _container(objects)["env"]}


# --- agreement with the rest of the project (no helm needed) ---


def test_the_chart_crd_is_the_generated_crd() -> None:
    assert (CHART / "crds" / "faissindexes.faiss.dev.yaml").read_text() == (
        ROOT / "crds" / "faissindexes.faiss.dev.yaml"
    ).read_text(), "run: cp crds/faissindexes.faiss.dev.yaml charts/faiss-operator/crds/"


def test_chart_and_image_versions_are_the_package_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert (chart["version"], chart["appVersion"]) == (VERSION, VERSION)
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert f"{values['image']['repository']}:{chart['appVersion']}" == IMAGE


def test_the_schema_accepts_exactly_the_index_keys_and_bounds_of_the_index_layer() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    faiss = schema["properties"]["ml"]["properties"]["faiss"]
    assert faiss["properties"]["config"]["properties"] == chart_values.config_properties()
    for key, expected in chart_values.legacy_properties().items():
        assert faiss["properties"][key] == expected


# --- lint and render ---


def test_helm_knows_the_kubernetes_version_it_was_built_for(helm: str) -> None:
    # Issue 19, item 10: without the version ldflags of helm's own Makefile, helm assumed v1.20 and
    # `helm template charts/faiss-operator` failed on the chart's kubeVersion unless --kube-version.
    run = subprocess.run([helm, "template", "faiss-operator", str(CHART)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "kind: Deployment" in run.stdout
    capabilities = subprocess.run(
        [helm, "template", "x", str(ROOT / "tests" / "ship" / "kube_version_chart")],
        capture_output=True, text=True, timeout=120,
    )
    assert capabilities.returncode == 0, capabilities.stderr
    assert yaml.safe_load(capabilities.stdout)["data"] == {"version": f"v{KUBERNETES}"}


def test_helm_lint_passes_strictly(helm: str) -> None:
    command = [helm, "lint", "--strict", str(CHART), "--kube-version", KUBERNETES]
    run = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in run.stdout


def test_the_defaults_render_a_cluster_wide_operator(helm: str, tmp_path: Path) -> None:
    objects = _render(helm, tmp_path)
    assert sorted((o["kind"], o["metadata"]["name"]) for o in objects) == [
        ("ClusterRole", "faiss-operator"),
        ("ClusterRoleBinding", "faiss-operator"),
        ("Deployment", "faiss-operator"),
        ("Service", "faiss-operator-metrics"),
        ("ServiceAccount", "faiss-operator"),
    ]
    deployment = _one(objects, "Deployment")
    assert (deployment["spec"]["replicas"], deployment["spec"]["strategy"]) == (1, {"type": "Recreate"})
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "faiss-operator"
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    container = _container(objects)
    assert container["image"] == IMAGE
    assert container["args"] == [
        "run",
        "--liveness=8080",
        "--metrics-port=9090",
        "--analysis-interval=10",
        "--analysis-timeout=30",
        "--watch-server-timeout=300",
        "--watch-client-timeout=330",
        "--watch-connect-timeout=30",
    ]
    assert _env(objects) == {"FAISS_OPERATOR_IMAGE": IMAGE}
    assert container["livenessProbe"] == {
        "httpGet": {"path": "/healthz", "port": "health"},
        "initialDelaySeconds": 10,
        "periodSeconds": 20,
        "timeoutSeconds": 5,
        "failureThreshold": 3,
    }
    assert container["ports"] == [{"name": "health", "containerPort": 8080}, {"name": "metrics", "containerPort": 9090}]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["resources"] == {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}}
    service = _one(objects, "Service")
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 9090, "targetPort": "metrics"}]
    binding = _one(objects, "ClusterRoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "faiss-operator", "namespace": NAMESPACE}]


def test_the_cluster_role_is_deploy_rbac_yaml(helm: str, tmp_path: Path) -> None:
    reference = ROOT / "deploy" / "rbac.yaml"
    (wanted,) = [d for d in yaml.safe_load_all(reference.read_text()) if d and d["kind"] == "ClusterRole"]
    assert _one(_render(helm, tmp_path), "ClusterRole")["rules"] == wanted["rules"]


NON_DEFAULT = {
    "watchNamespaces": ["search", "team-b"],
    "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}}},
    "artifacts": {"create": True, "storageClassName": "nfs", "size": "50Gi"},
    "operator": {"logLevel": "verbose", "resyncSeconds": 120, "extraEnv": [{"name": "TZ", "value": "UTC"}]},
    "image": {"tag": "0.1.0-rc1"},
}


def test_watch_namespaces_give_a_role_per_namespace_and_only_crd_reading_cluster_wide(
    helm: str, tmp_path: Path
) -> None:
    objects = _render(helm, tmp_path, NON_DEFAULT)
    namespaced = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objects}
    assert {
        ("Role", "search", "faiss-operator"),
        ("RoleBinding", "search", "faiss-operator"),
        ("Role", "team-b", "faiss-operator"),
        ("RoleBinding", "team-b", "faiss-operator"),
        ("PersistentVolumeClaim", "search", "faiss-artifacts"),
        ("PersistentVolumeClaim", "team-b", "faiss-artifacts"),
        ("ServiceMonitor", NAMESPACE, "faiss-operator"),
    } <= namespaced
    cluster_rules = _one(objects, "ClusterRole")["rules"]
    assert [r["resources"] for r in cluster_rules] == [["customresourcedefinitions"], ["namespaces"]]
    assert all(set(r["verbs"]) == {"list", "watch"} for r in cluster_rules)
    roles = [o for o in objects if o["kind"] == "Role"]
    default_rules = _one(_render(helm, tmp_path), "ClusterRole")["rules"]
    assert all(role["rules"] + cluster_rules == default_rules for role in roles)
    container = _container(objects)
    assert container["image"] == "ghcr.io/faiss-operator/faiss-operator:0.1.0-rc1"
    assert container["args"][-4:] == ["--resync=120", "--namespace=search", "--namespace=team-b", "--verbose"]
    assert _env(objects) == {"FAISS_OPERATOR_IMAGE": "ghcr.io/faiss-operator/faiss-operator:0.1.0-rc1", "TZ": "UTC"}
    claim = next(o for o in objects if o["kind"] == "PersistentVolumeClaim")
    assert claim["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert claim["spec"] == {
        "accessModes": ["ReadWriteMany"],
        "storageClassName": "nfs",
        "resources": {"requests": {"storage": "50Gi"}},
    }
    monitor = _one(objects, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}
    ]


# --- the seed's Helm values become the operator's environment, and the operator reads them ---

SEED_V08 = {"ml": {"faiss": {"indexType": "IVF", "nlist": 100, "nprobe": 10}}}
SEED_V09 = {"ml": {"faiss": {"indexType": "HNSW", "config": {"m": 32, "efConstruction": 200, "efSearch": 64}}}}
SEED_OPQ = {
    "ml": {
        "faiss": {
            "indexType": "OPQ+HNSW",
            "config": {"encoding": "PQ", "mPq": 8, "nSubquantizers": 32, "mHnsw": 16, "trainSize": 1000000},
        }
    }
}


@pytest.mark.parametrize(
    ("values", "env", "effective"),
    [
        (
            SEED_V08,
            {"FAISS_INDEX_TYPE": "IVF", "FAISS_NLIST": "100", "FAISS_NPROBE": "10"},
            ("IVF", {"nlist": 100, "nprobe": 10, "train_size": None}),
        ),
        (
            SEED_V09,
            {"FAISS_INDEX_TYPE": "HNSW", "FAISS_CONFIG_M": "32", "FAISS_CONFIG_EF_CONSTRUCTION": "200",
             "FAISS_CONFIG_EF_SEARCH": "64"},
            ("HNSW", {"m": 32, "ef_construction": 200, "ef_search": 64}),
        ),
        (
            SEED_OPQ,
            {"FAISS_INDEX_TYPE": "OPQ+HNSW", "FAISS_CONFIG_ENCODING": "PQ", "FAISS_CONFIG_M_PQ": "8",
             "FAISS_CONFIG_N_SUBQUANTIZERS": "32", "FAISS_CONFIG_M_HNSW": "16", "FAISS_CONFIG_TRAIN_SIZE": "1000000"},
            ("OPQ+HNSW", {"encoding": "PQ", "m_pq": 8, "n_subquantizers": 32, "m_hnsw": 16, "train_size": 1000000,
                          "ef_construction": 200, "ef_search": 128}),
        ),
    ],
    ids=["v0.8 IVF values", "v0.9 HNSW values", "OPQ+HNSW keys"],
)  # fmt: skip
def test_the_seed_values_files_keep_working(
    helm: str, tmp_path: Path, values: dict[str, Any], env: dict[str, str], effective: tuple[str, dict[str, Any]]
) -> None:
    rendered = _env(_render(helm, tmp_path, values))
    assert rendered == {"FAISS_OPERATOR_IMAGE": IMAGE, **env}
    # The operator's own reading of that environment gives the seed's config.
    index_env = operator_settings.OperatorSettings.from_environment(rendered).index_env
    resolved = index_settings.resolve_config(env=index_env, config_file=None)
    config = resolved.config.model_dump(mode="json")
    assert (resolved.index_type, {k: config[k] for k in effective[1]}) == effective


# --- bad values refused at install ---


@pytest.mark.parametrize(
    ("values", "mentions"),
    [
        ({"ml": {"faiss": {"indexType": "LSH"}}}, "indexType"),
        ({"ml": {"faiss": {"config": {"efSearch": 0}}}}, "efSearch"),
        ({"ml": {"faiss": {"config": {"efsearch": 64}}}}, "efsearch"),
        ({"ml": {"faiss": {"nlist": "many"}}}, "nlist"),
        ({"watchNamespaces": ["Team_B"]}, "watchNamespaces"),
        ({"operator": {"logLevel": "loud"}}, "logLevel"),
        ({"artifacts": {"accessModes": []}}, "accessModes"),
        ({"artifacts": {"size": "lots"}}, "size"),
        ({"resources": {"limits": {"memory": "a lot"}}}, "memory"),
        ({"replicas": 2}, "replicas"),
    ],
    ids=lambda v: json.dumps(v) if isinstance(v, dict) else v,
)
def test_bad_values_are_refused_naming_the_value(
    helm: str, tmp_path: Path, values: dict[str, Any], mentions: str
) -> None:
    run = _template(helm, values=values, tmp=tmp_path)
    assert run.returncode != 0, run.stdout
    assert "values don't meet the specifications of the schema" in run.stderr, run.stderr
    assert mentions in run.stderr, run.stderr


def test_a_service_monitor_without_the_metrics_service_is_refused(helm: str, tmp_path: Path) -> None:
    values = {"metrics": {"service": {"enabled": False}, "serviceMonitor": {"enabled": True}}}
    run = _template(helm, values=values, tmp=tmp_path)
    assert run.returncode != 0
    assert "metrics.serviceMonitor.enabled needs metrics.service.enabled" in run.stderr


# --- every rendered object against the Kubernetes 1.37 schemas ---


@pytest.mark.parametrize(
    "values", [None, NON_DEFAULT, SEED_V08, SEED_V09, SEED_OPQ], ids=["defaults", "non-default", "v0.8", "v0.9", "opq"]
)
def test_rendered_objects_are_valid_kubernetes_1_37(helm: str, tmp_path: Path, values: dict[str, Any] | None) -> None:
    objects = _render(helm, tmp_path, values, "--include-crds")
    assert "CustomResourceDefinition" in {o["kind"] for o in objects}
    for obj in objects:
        if obj["kind"] == "ServiceMonitor":  # the Prometheus Operator's CRD, not in Kubernetes' schemas
            continue
        kubernetes_validate.validate(obj, KUBERNETES, strict=True)


# --- the Deployment's command line is one `faiss-operator run` accepts ---


@pytest.mark.parametrize("values", [None, NON_DEFAULT], ids=["defaults", "non-default"])
def test_the_operator_accepts_the_rendered_arguments(helm: str, tmp_path: Path, values: dict[str, Any] | None) -> None:
    import argparse
    parser = argparse.ArgumentParser(prog="faiss-operator run", exit_on_error=False)
    run_command.add_arguments(parser)
    args = _container(_render(helm, tmp_path, values))["args"]
    assert args[0] == "run"
    parsed = parser.parse_args(args[1:])
    assert parsed.liveness == "http://0.0.0.0:8080/healthz"
    assert parsed.metrics_port == 9090


# --- objectStore values: the operator-wide s3:// settings (issue 18) ---


def test_object_store_values_become_the_operators_s3_settings(helm: str, tmp_path: Path) -> None:
    values = {"objectStore": {"endpoint": "https://storage.googleapis.com", "region": "auto",
                              "addressingStyle": "path", "credentialsSecret": "gcs-hmac"}}
    env = _env(_render(helm, tmp_path, values))
    assert {k: v for k, v in env.items() if k.startswith("FAISS_S3_")} == {
        "FAISS_S3_ENDPOINT": "https://storage.googleapis.com", "FAISS_S3_REGION": "auto",
        "FAISS_S3_ADDRESSING_STYLE": "path", "FAISS_S3_CREDENTIALS_SECRET": "gcs-hmac",
    }
    settings = operator_settings.OperatorSettings.from_environment(env)
    assert settings.object_store is not None and settings.object_store.to_wire() == {
        "endpoint": "https://storage.googleapis.com", "region": "auto", "addressingStyle": "path",
        "credentialsSecretRef": {"name": "gcs-hmac"},
    }
    assert not any(k.startswith("FAISS_S3_") for k in settings.index_env)


@pytest.mark.parametrize("values, mentions", [
    ({"objectStore": {"endpoint": "storage:9000"}}, "objectStore/endpoint"),
    ({"objectStore": {"addressingStyle": "sideways"}}, "objectStore/addressingStyle"),
    ({"objectStore": {"accessKeyId": "AKIA..."}}, "accessKeyId"),
], ids=["endpoint-not-a-url", "unknown-style", "keys-in-values"])
def test_bad_object_store_values_are_refused(helm: str, tmp_path: Path, values: dict[str, Any], mentions: str) -> None:
    run = _template(helm, values=values, tmp=tmp_path)
    assert run.returncode != 0, run.stdout
    assert mentions in run.stderr, run.stderr
