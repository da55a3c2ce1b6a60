# Every target installs what it needs from nothing: a fresh clone needs only python3, go and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: venv test test-fast demo k8s sysdeps cluster-up cluster-down lint

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# The main job: the index-type comparison on generated data, raw FAISS beside the library.
demo: venv
	$(BIN)/python benchmarks/index_types.py

# The whole suite, integration tier included (it starts its own cluster from the k8s build).
test: venv k8s sysdeps
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

# A local cluster for development: `make cluster-up && export KUBECONFIG=$$PWD/.cluster/kubeconfig`.
cluster-up: venv k8s sysdeps
	$(BIN)/python -m e2e.harness up

cluster-down: venv
	$(BIN)/python -m e2e.harness down

# Everything but the slow tier and the integration tier: no control plane is built or started.
test-fast: venv
	$(BIN)/pytest -m "not slow and not integration"
