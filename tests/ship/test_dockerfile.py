"""The Dockerfile, read as text: Docker is not available on the project's machines, so what can be
checked without building is checked here (pinned base, non-root user, runtime dependencies only,
the entrypoint, and an image name equal to the operator's default image)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

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


def test_only_the_runtime_dependencies_are_installed() -> None:
    installs = re.findall(r"pip install (\S+)", DOCKERFILE)
    assert installs == ["--upgrade", "."], installs  # `.`: the package without any extra


def test_the_build_context_holds_only_what_the_package_needs() -> None:
    copies = [line for line in INSTRUCTIONS if line.startswith("COPY") and "--from" not in line]
    assert copies == ["COPY pyproject.toml README.md ./", "COPY operator/ operator/"]
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[1:5] == ["*", "!pyproject.toml", "!README.md", "!operator/"]


def test_the_image_name_is_the_operator_default_image_at_the_package_version() -> None:
    assert settings.DEFAULT_IMAGE == f"ghcr.io/faiss-operator/faiss-operator:{VERSION}"
    assert f"docker build -t {settings.DEFAULT_IMAGE} ." in DOCKERFILE
