#!/usr/bin/env bash
# `make image`: builds the Dockerfile on a machine with no Docker and no registry, with Debian's
# podman and runc. The base is Debian bookworm made by mmdebstrap from the package list below,
# cached as a tarball keyed by that list, imported into podman and passed through the
# Dockerfile's PYTHON_IMAGE argument; a rebuild with the same list and the same Python files
# takes the cached layers. Prints the image reference last, on stdout.
#
#   hack/image/build.sh [IMAGE]        IMAGE defaults to faiss-operator:dev
#
# Podman reads the project's own configuration, never the host's (written under the cache):
#   containers.conf  runtime = runc (crun 1.8 refuses hybrid cgroup hierarchies) and
#                    default_ulimits no higher than this machine's hard limits (podman's
#                    defaults exceed a sandbox's hard limits and every RUN step fails);
#   storage.conf     image storage under the cache, so a CI cache keeps the layers.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
IMAGE="${1:-faiss-operator:dev}"
CACHE="${FAISS_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/faiss-operator}"
SUITE=bookworm
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# The base: Debian's Python with venv (the Dockerfile makes one), the CA bundle, and passwd for
# the image's non-root user. Changing this list (or the suite) makes a new base tarball.
PACKAGES=(python3 python3-venv python-is-python3 ca-certificates passwd)
START=$(date +%s)
log() { printf '[image %4ss] %s\n' "$(( $(date +%s) - START ))" "$*" >&2; }

# shellcheck source=hack/image/podman-env.sh
source "$ROOT/hack/image/podman-env.sh"

key="$(printf '%s\n' "$SUITE" "$MIRROR" "${PACKAGES[@]}" | sha256sum | cut -c1-12)"
base_tar="$CACHE/image/base-$SUITE-$key.tar"
base_ref="localhost/faiss-operator-base:$SUITE-$key"
if [[ ! -s "$base_tar" ]]; then
    log "making the base with mmdebstrap ($SUITE: ${PACKAGES[*]})"
    mkdir -p "$(dirname "$base_tar")"
    # minbase: Essential packages and apt only; --dpkgopt keeps docs and man pages out.
    mmdebstrap --quiet --format=tar --variant=minbase --include="$(IFS=,; echo "${PACKAGES[*]}")" \
        --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
        "$SUITE" "$base_tar.partial" "$MIRROR"
    mv "$base_tar.partial" "$base_tar"
else
    log "base cached: $base_tar"
fi
if ! podman image exists "$base_ref"; then
    log "importing the base as $base_ref"
    podman import --quiet "$base_tar" "$base_ref" >/dev/null
fi
# The base is also the small image the local cluster's other pods run from: the tests' `python`
# pods (Debian's Python 3.11, as python:3.11 is; no pip, no numpy).
podman tag "$base_ref" localhost/python:3.11 localhost/python:latest

# The build's inputs: when the image already carries their hash, nothing is built (buildah would
# still hash the venv copied between the stages, ~12 s here).
inputs="$(cd "$ROOT" && { echo "$base_ref"; find Dockerfile .dockerignore pyproject.toml README.md operator \
    hack/image/requirements.txt -type f ! -path '*__pycache__*' -print0 | sort -z | xargs -0 sha256sum; } \
    | sha256sum | cut -c1-16)"
if [[ "$(podman image inspect --format '{{index .Labels "dev.faiss-operator.inputs"}}' "$IMAGE" 2>/dev/null)" == "$inputs" ]]; then
    log "$IMAGE is up to date (inputs $inputs)"
    echo "localhost/${IMAGE#localhost/}"
    exit 0
fi

# pip inside the build checks TLS against the host's CA bundle (the base's bundle is the same
# Debian package, but a proxy's CA is only in the host's).
ca_bundle=/etc/ssl/certs/ca-certificates.crt
# Also tagged as the operator's default image (controller/decision/settings.py DEFAULT_IMAGE).
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/pyproject.toml" | head -1)"
log "building $IMAGE from the Dockerfile (PYTHON_IMAGE=$base_ref)"
# The RUN steps take the same ulimits as containers.conf: buildah does not read default_ulimits.
podman build --quiet --layers --pull=never \
    --ulimit "nofile=$PODMAN_NOFILE:$PODMAN_NOFILE" --ulimit "nproc=$PODMAN_NPROC:$PODMAN_NPROC" \
    --build-arg PYTHON_IMAGE="$base_ref" \
    --volume "$ca_bundle:/etc/ssl/certs/ca-certificates.crt:ro" \
    --label "dev.faiss-operator.inputs=$inputs" --tag "$IMAGE" --tag "ghcr.io/faiss-operator/faiss-operator:$version" \
    "$ROOT" >/dev/null
size="$(podman image inspect --format '{{.Size}}' "$IMAGE")"
log "built $IMAGE: $(( size / 1000000 )) MB, $(( $(date +%s) - START ))s"
podman image inspect --format '{{.Id}}' "$IMAGE" > "$CACHE/image/last-build.id"
echo "localhost/${IMAGE#localhost/}"
