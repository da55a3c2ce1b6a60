"""The Dockerfile, read as text: what can be checked without building it (pinned base, pinned
requirements equal to pyproject.toml's dependencies, non-root user, the entrypoint, and an image
name equal to the operator's default image). `make image` builds it (hack/image/build.sh) and the
integration tier runs pods from it (tests/integration/harness/test_harness_runc.py)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

from faiss_operator.controller.decision import settings

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
INSTRUCTIONS = [line.strip() for line in DOCKERFILE.splitlines() if line.strip() and not line.startswith("#")]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_the_base_image_is_a_pinned_slim_python() -> None:
    (base,) = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE, re.MULTILINE)
    assert re.fullmatch(r"python:3\.\d+\.\d+-slim-\w+", base), base
    froms = [line for line in INSTRUCTIONS if line.startswith("FROM")]
    assert froms == ["FROM ${PYTHON_IMAGE} AS build", "FROM ${PYTHON_IMAGE}"]


def test_the_final_stage_runs_as_a_numeric_non_root_user_with_the_cli_as_entrypoint() -> None:
    final = INSTRUCTIONS[INSTRUCTIONS.index("FROM ${PYTHON_IMAGE}") :]
    users = [line for line in final if line.startswith("USER ")]
    assert users == ["USER 65532:65532"]
    assert final[-2:] == ['ENTRYPOINT ["faiss-operator"]', 'CMD ["run"]']


def test_pinned_requirements_then_the_package_without_deps_and_pip_leaves() -> None:
    installs = re.findall(r"pip (install|uninstall) (.+?)(?: \\)?$", DOCKERFILE, re.MULTILINE)
    assert installs == [("install", "pip==26.3"), ("install", "--requirement requirements.txt"),
                        ("install", "--no-deps ."), ("uninstall", "--yes pip")], installs


def test_the_requirements_pin_every_runtime_dependency_within_pyprojects_range() -> None:
    pins = {}
    for line in (ROOT / "hack" / "image" / "requirements.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"not pinned: {line}"
            pins[name.lower().replace("_", "-")] = version
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for dependency in map(Requirement, dependencies):
        name = dependency.name.lower().replace("_", "-")
        assert name in pins, f"{name} is not in hack/image/requirements.txt (run hack/image/pin.sh)"
        assert dependency.specifier.contains(pins[name]), f"{name}=={pins[name]} is outside {dependency.specifier}"


def test_the_build_context_holds_only_what_the_package_needs() -> None:
    copies = [line for line in INSTRUCTIONS if line.startswith("COPY") and "--from" not in line]
    assert copies == ["COPY hack/image/requirements.txt requirements.txt", "COPY pyproject.toml README.md ./",
                      "COPY operator/ operator/"]
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[1:6] == ["*", "!pyproject.toml", "!README.md", "!operator/", "!hack/image/requirements.txt"]


def test_the_image_name_is_the_operator_default_image_at_the_package_version() -> None:
    assert settings.DEFAULT_IMAGE == f"ghcr.io/faiss-operator/faiss-operator:{VERSION}"
    assert f"docker build -t {settings.DEFAULT_IMAGE} ." in DOCKERFILE
