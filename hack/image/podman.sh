#!/usr/bin/env bash
# podman on the image storage `make image` writes (the project's containers.conf and storage.conf
# under ~/.cache/faiss-operator/podman, never the host's): a plain `podman push` or `podman save`
# would look in the host's storage and not find localhost/faiss-operator:dev.
#   hack/image/podman.sh push localhost/faiss-operator:dev registry.example.com/search/faiss-operator:0.1.0
#   hack/image/podman.sh save --format oci-archive -o faiss-operator.tar localhost/faiss-operator:dev
set -euo pipefail
# shellcheck source=hack/image/podman-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/podman-env.sh"
exec podman "$@"
