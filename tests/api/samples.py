"""FaissIndex resources users might write: good ones the API must accept, bad ones it must refuse.

Each bad sample says which check refuses it: the OpenAPI schema (`schema`) or a CEL rule (`cel`,
mirrored by a pydantic validator so the operator and the CLI refuse it with the same message).
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

DESIGN_EXAMPLE: dict[str, Any] = {
    "apiVersion": "faiss.dev/v1alpha1",
    "kind": "FaissIndex",
    "metadata": {"name": "alerts", "namespace": "search"},
    "spec": {
        "dimension": 384,
        "metric": "L2",
        "indexType": "HNSW",
        "config": {"m": 32, "efConstruction": 200, "efSearch": 64},
        "source": {"uri": "pvc://embeddings/alerts/v12.npy"},
        "evaluation": {"k": 10, "queries": 1000, "minRecall": 0.95, "maxP99LatencyMs": 2.0},
        "serving": {"replicas": 3},
        "rollout": {
            "steps": [{"weight": 25, "pauseSeconds": 60}, {"weight": 50, "pauseSeconds": 60}],
            "autoRollback": True,
            "revisionHistoryLimit": 3,
        },
    },
}


def _with(path: str, value: Any, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """A copy of `base` (the DESIGN example) with the dotted `path` set (or removed if value is ...)."""
    body = copy.deepcopy(base or DESIGN_EXAMPLE)
    *parents, last = path.split(".")
    node = body
    for key in parents:
        node = node.setdefault(key, {})
    if value is ...:
        node.pop(last, None)
    else:
        node[last] = value
    return body


GOOD: dict[str, dict[str, Any]] = {
    "the DESIGN.md example": DESIGN_EXAMPLE,
    "the smallest spec": {
        "apiVersion": "faiss.dev/v1alpha1",
        "kind": "FaissIndex",
        "metadata": {"name": "tiny"},
        "spec": {"dimension": 8, "source": {"uri": "file:///data/x.npy"}},
    },
    "IVF with nlist and nprobe": _with("spec.config", {"nlist": 1024, "nprobe": 32}, _with("spec.indexType", "IVF")),
    # A search probes min(nprobe, nlist) lists (index/search_params.py): never an error.
    "IVF with nprobe above nlist": _with("spec.config", {"nlist": 8, "nprobe": 16}, _with("spec.indexType", "IVF")),
    "IVFPQ": _with("spec.config", {"nlist": 256, "mPq": 48, "nbits": 8}, _with("spec.indexType", "IVFPQ")),
    "OPQ+HNSW with an encoding": _with(
        "spec.config", {"encoding": "SQ8", "mHnsw": 16, "efSearch": 128}, _with("spec.indexType", "OPQ+HNSW")
    ),
    "Flat without config": _with("spec.config", ..., _with("spec.indexType", "Flat")),
    "cosine: inner product on normalized vectors": _with("spec.normalize", True, _with("spec.metric", "InnerProduct")),
    "no indexType: the operator's default decides": _with("spec.indexType", ...),
    "ids, metadata and an http source": _with(
        "spec.source",
        {
            "uri": "https://data.example/v1.npy",
            "idsUri": "pvc://embeddings/ids.txt",
            "metadataUri": "pvc://embeddings/meta.jsonl",
        },
    ),
    "build and serving knobs": _with(
        "spec.build",
        {
            "image": "faiss-operator:1",
            "resources": {"requests": {"cpu": 2, "memory": "8Gi"}},
            "activeDeadlineSeconds": 7200,
            "backoffLimit": 0,
            "nodeSelector": {"pool": "build"},
            "tolerations": [{"key": "build", "operator": "Exists", "effect": "NoSchedule"}],
        },
        _with(
            "spec.serving",
            {"replicas": 5, "image": "faiss-operator:1", "port": 9000, "resources": {"limits": {"memory": "4Gi"}}},
        ),
    ),
    "an indefinite pause and analysis": _with(
        "spec.rollout",
        {
            "steps": [{"weight": 10}, {"weight": 100, "pauseSeconds": 0}],
            "analysis": {"minRecall": 0.9, "maxLatencyRatio": 1.5, "failureLimit": 2},
            "autoRollback": False,
            "onFailure": "Pause",
            "progressDeadlineSeconds": 900,
            "scaleDownDelaySeconds": 0,
            "revisionHistoryLimit": 0,
        },
    ),
    "paused": _with("spec.paused", True),
    "pod settings for build and serving": _with(
        "spec.build",
        {
            "nodeSelector": {"pool": "batch"},
            "priorityClassName": "batch-low",
            "runtimeClassName": "gvisor",
            "podSecurityContext": {"runAsUser": 10001, "fsGroup": 10001},
        },
        _with(
            "spec.serving",
            {
                "replicas": 3,
                "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "search", "effect": "NoSchedule"}],
                "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname"}}]}},
                "topologySpreadConstraints": [
                    {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway"}
                ],
                "serviceAccountName": "faiss-serving",
                "runtimeClassName": "kata",
                "imagePullSecrets": [{"name": "registry"}],
                "podAnnotations": {"prometheus.io/scrape": "true"},
                "podLabels": {"team": "search"},
                "securityContext": {"capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": True},
                "podDisruptionBudget": {"maxUnavailable": "25%"},
            },
        ),
    ),
    "no PodDisruptionBudget": _with("spec.serving.podDisruptionBudget", {"enabled": False}),
    "artifacts on another claim": _with("spec.artifacts", {"uri": "pvc://index-store/prod"}),
    "source and artifacts in object storage": _with(
        "spec.objectStore",
        {"endpoint": "http://versitygw.storage:7070", "region": "us-east-1", "addressingStyle": "path",
         "credentialsSecretRef": {"name": "faiss-s3"}},
        _with("spec.artifacts", {"uri": "s3://faiss-artifacts/prod"},
              _with("spec.source", {"uri": "s3://embeddings/alerts/v12.npy", "idsUri": "s3://embeddings/alerts/v12.ids"})),
    ),
}


@dataclasses.dataclass(frozen=True)
class Bad:
    body: dict[str, Any]
    refused_by: str  # "schema" or "cel"
    message: str  # what the pydantic model says (a substring)


BAD: dict[str, Bad] = {
    "dimension 0": Bad(
        _with("spec.dimension", 0), "schema", "spec.dimension: Input should be greater than or equal to 1"
    ),
    "no source": Bad(_with("spec.source", ...), "schema", "spec.source: Field required"),
    "metric cosine": Bad(
        _with("spec.metric", "cosine"), "schema", "spec.metric: Input should be 'L2' or 'InnerProduct'"
    ),
    "unknown index type": Bad(_with("spec.indexType", "LSH"), "schema", "spec.indexType: Input should be"),
    "efSearch 0": Bad(
        _with("spec.config.efSearch", 0), "schema", "spec.config.efSearch: Input should be greater than or equal to 1"
    ),
    "encoding SQ5": Bad(
        _with("spec.config", {"encoding": "SQ5"}, _with("spec.indexType", "OPQ+HNSW")), "schema", "spec.config.encoding"
    ),
    "source on gs": Bad(
        _with("spec.source.uri", "gs://bucket/x.npy"), "schema", "spec.source.uri: String should match pattern"
    ),
    "artifacts in a bucket without a prefix": Bad(
        _with("spec.artifacts.uri", "s3://faiss-artifacts"), "schema", "spec.artifacts.uri: String should match"
    ),
    "object store endpoint not a URL": Bad(
        _with("spec.objectStore", {"endpoint": "store:9000"}), "schema", "spec.objectStore.endpoint: String should"
    ),
    "object store addressing style unknown": Bad(
        _with("spec.objectStore", {"addressingStyle": "sideways"}), "schema", "spec.objectStore.addressingStyle"
    ),
    "source leaving its claim": Bad(
        _with("spec.source.uri", "pvc://x/../../y.npy"), "cel", "spec.source.uri: a pvc:// path may neither contain"
    ),
    "ids leaving their claim": Bad(
        _with("spec.source.idsUri", "pvc://embeddings/a/.."), "cel", "spec.source.idsUri: a pvc:// path may neither"
    ),
    "artifacts leaving their claim": Bad(
        _with("spec.artifacts.uri", "pvc://store/../other"), "cel", "spec.artifacts.uri: a pvc:// path may neither"
    ),
    "source with an absolute path in its claim": Bad(
        _with("spec.source.uri", "pvc://e//abs.npy"), "cel", "spec.source.uri: a pvc:// path may neither contain a "
        "'..' segment nor start with '/'"
    ),
    "artifacts not on a claim": Bad(_with("spec.artifacts.uri", "file:///tmp"), "schema", "spec.artifacts.uri"),
    "minRecall 0": Bad(
        _with("spec.evaluation.minRecall", 0), "schema", "spec.evaluation.minRecall: Input should be greater than 0"
    ),
    "minRecall above 1": Bad(
        _with("spec.evaluation.minRecall", 1.2),
        "schema",
        "spec.evaluation.minRecall: Input should be less than or equal to 1",
    ),
    "a step weight of 0": Bad(_with("spec.rollout.steps", [{"weight": 0}]), "schema", "spec.rollout.steps.0.weight"),
    "a step weight above 100": Bad(
        _with("spec.rollout.steps", [{"weight": 101}]), "schema", "spec.rollout.steps.0.weight"
    ),
    "zero replicas": Bad(_with("spec.serving.replicas", 0), "schema", "spec.serving.replicas"),
    "onFailure Explode": Bad(_with("spec.rollout.onFailure", "Explode"), "schema", "spec.rollout.onFailure"),
    "a negative pause": Bad(
        _with("spec.rollout.steps", [{"weight": 10, "pauseSeconds": -1}]), "schema", "pauseSeconds"
    ),
    "too many steps": Bad(
        _with("spec.rollout.steps", [{"weight": w} for w in range(1, 23)]),
        "schema",
        "spec.rollout.steps: List should have at most 20 items",
    ),
    "an HNSW config with nprobe": Bad(
        _with("spec.config.nprobe", 8),
        "cel",
        "spec.config.nprobe: not a parameter of indexType HNSW; valid keys: efConstruction, efSearch, m",
    ),
    "an IVF config with m": Bad(
        _with("spec.config", {"m": 8}, _with("spec.indexType", "IVF")),
        "cel",
        "spec.config.m: not a parameter of indexType IVF",
    ),
    "a Flat config with any key": Bad(
        _with("spec.config", {"nlist": 8}, _with("spec.indexType", "Flat")),
        "cel",
        "spec.config.nlist: not a parameter of indexType Flat",
    ),
    "a pod label of the operator's": Bad(
        _with("spec.serving.podLabels", {"faiss.dev/revision": "x"}),
        "cel",
        "podLabels may not set the operator's own labels",
    ),
    "a PodDisruptionBudget with both bounds": Bad(
        _with("spec.serving.podDisruptionBudget", {"maxUnavailable": 1, "minAvailable": 1}),
        "cel",
        "podDisruptionBudget: set maxUnavailable or minAvailable, not both",
    ),
    "a PodDisruptionBudget bound that is no percentage": Bad(
        _with("spec.serving.podDisruptionBudget", {"minAvailable": "half"}),
        "cel",
        "spec.serving.podDisruptionBudget.minAvailable",
    ),
    "a topology spread constraint without topologyKey": Bad(
        _with("spec.serving.topologySpreadConstraints", [{"maxSkew": 1, "whenUnsatisfiable": "DoNotSchedule"}]),
        "schema",
        "spec.serving.topologySpreadConstraints.0.topologyKey: Field required",
    ),
    "a negative runAsUser": Bad(
        _with("spec.build.podSecurityContext", {"runAsUser": -1}),
        "schema",
        "spec.build.podSecurityContext.runAsUser: Input should be greater than or equal to 0",
    ),
    "decreasing step weights": Bad(
        _with("spec.rollout.steps", [{"weight": 50}, {"weight": 25}]), "cel", "weights must be strictly increasing"
    ),
    "repeated step weights": Bad(
        _with("spec.rollout.steps", [{"weight": 25}, {"weight": 25}]), "cel", "weights must be strictly increasing"
    ),
}
