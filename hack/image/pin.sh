#!/usr/bin/env bash
# Regenerates hack/image/requirements.txt: the runtime dependencies of pyproject.toml resolved in a
# fresh venv (no extra) and frozen at exact versions. A test keeps the file in step with pyproject.toml.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
VENV="$(mktemp -d)"
trap 'rm -rf "$VENV"' EXIT
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q pip=="$(sed -n 's/.*pip install pip==\([0-9.]*\).*/\1/p' "$ROOT/Dockerfile")"
"$VENV/bin/pip" install -q "$ROOT"
{
    echo "# The image's runtime dependencies at exact versions (the Dockerfile installs these, then the package"
    echo "# with --no-deps). Regenerate after a change of pyproject.toml's dependencies: hack/image/pin.sh"
    "$VENV/bin/pip" freeze --exclude-editable | grep -v '^faiss-operator'
} > "$ROOT/hack/image/requirements.txt"
