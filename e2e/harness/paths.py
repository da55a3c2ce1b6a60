"""Where the harness finds the built programs and the repository's own environment."""

from __future__ import annotations

import pathlib
import subprocess
import sys

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "hack" / "build-k8s.sh"
DEFAULT_STATE_DIR = REPO_ROOT / ".cluster"
CONTROL_PLANE_BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")


def bin_dir() -> pathlib.Path:
    """The cache directory hack/build-k8s.sh builds into (it owns the version and the layout)."""
    out = subprocess.run([str(BUILD_SCRIPT), "--print"], check=True, capture_output=True, text=True)
    return pathlib.Path(out.stdout.strip())


def missing_binaries(directory: pathlib.Path) -> list[str]:
    return [name for name in CONTROL_PLANE_BINARIES if not (directory / name).is_file()]


def venv_bin() -> pathlib.Path:
    """The repository's .venv/bin (what pods run `faiss-operator` and `python` from), else the
    bin directory of the Python running the harness."""
    repo_venv = REPO_ROOT / ".venv" / "bin"
    return repo_venv if (repo_venv / "python").exists() else pathlib.Path(sys.prefix) / "bin"


def build_problem() -> str | None:
    """Why the control plane cannot start from the build, or None if all programs are there."""
    try:
        missing = missing_binaries(bin_dir())
    except (OSError, subprocess.CalledProcessError) as exc:
        return f"cannot locate the build: {exc}"
    if missing:
        return f"missing {', '.join(missing)} in {bin_dir()} (run `make k8s`)"
    return None
