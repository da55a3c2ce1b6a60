#!/usr/bin/env bash
# `make e2e-kind`: the in-cluster e2e stories on a kind cluster, for users with Docker.
# NOT RUN on the project's machines (no Docker there): written to the kind, docker and helm
# documentation and kept as short as possible; report what breaks.
#
# Steps: a kind cluster (reused when it exists), the image built and loaded into it, then the
# stories that run the operator inside the cluster (the chart installed with helm, the operator
# as its pod; the operator of deploy/rbac.yaml as a pod) with E2E_KUBECONFIG pointing at kind,
# which makes tests/integration use that cluster instead of starting the local control plane.
set -euo pipefail
cd "$(dirname "$0")/.."
CLUSTER="${KIND_CLUSTER:-faiss-operator-e2e}"
IMAGE="faiss-operator:dev"
for tool in docker kind kubectl helm; do
    command -v "$tool" >/dev/null || { echo "e2e-kind: $tool is not on PATH" >&2; exit 2; }
done
kind get clusters | grep -qx "$CLUSTER" || kind create cluster --name "$CLUSTER" --wait 120s
docker build -t "$IMAGE" .
kind load docker-image "$IMAGE" --name "$CLUSTER"
KUBECONFIG_FILE="$(mktemp)"
trap 'rm -f "$KUBECONFIG_FILE"' EXIT
kind get kubeconfig --name "$CLUSTER" > "$KUBECONFIG_FILE"
# The story pods that write vectors need numpy: the operator's image has it (the python image has not).
E2E_KUBECONFIG="$KUBECONFIG_FILE" E2E_WRITER_IMAGE="$IMAGE" \
    .venv/bin/pytest -p no:cacheprovider -m integration \
    tests/integration/test_chart_install.py::test_the_operator_as_the_charts_pod_makes_the_first_index_ready
echo "e2e-kind: passed; the cluster is kept: kind delete cluster --name $CLUSTER"
