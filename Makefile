# Every target installs what it needs from nothing: a fresh clone needs only python3, go and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: venv test test-fast demo k8s cluster-up cluster-down lint

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# The main job: the index-type comparison on generated data, raw FAISS beside the library.
demo: venv
	$(BIN)/python benchmarks/index_types.py

# The whole suite, integration tier included.
test: venv
	$(BIN)/pytest

# Everything but the slow tier.
test-fast: venv
	$(BIN)/pytest -m "not slow"
