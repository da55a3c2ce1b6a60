#!/usr/bin/env bash
# Builds the real control-plane programs (kube-apiserver, kube-controller-manager, kube-scheduler,
# kubectl, etcd, helm) and the S3 server the integration tier stores s3:// objects in (versitygw)
# from the pinned Go modules under hack/ into a cache outside the repo:
#   ~/.cache/faiss-operator/k8s/<kubernetes version>/bin
# Only missing binaries are built, so a second run is a no-op. No registry ships these binaries
# here and kind needs Docker, so building them is how integration tests get a real API server.
#
#   hack/build-k8s.sh           build what is missing, print the bin directory last
#   hack/build-k8s.sh --print   print the bin directory only
set -euo pipefail

HACK="$(cd "$(dirname "$0")" && pwd)"

mod_version() { # <go.mod> <module path>
    awk -v m="$2" '$1 == m && $2 ~ /^v/ {print $2; exit} $1 == "require" && $2 == m {print $3; exit}' "$1"
}

K8S_VERSION="$(mod_version "$HACK/k8s/go.mod" k8s.io/kubernetes)"
ETCD_VERSION="$(mod_version "$HACK/etcd/go.mod" go.etcd.io/etcd/server/v3)"
HELM_VERSION="$(mod_version "$HACK/helm/go.mod" helm.sh/helm/v3)"
VERSITYGW_VERSION="$(mod_version "$HACK/versitygw/go.mod" github.com/versity/versitygw)"
BIN="${FAISS_OPERATOR_K8S_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/faiss-operator/k8s/$K8S_VERSION/bin}"

if [[ "${1:-}" == "--print" ]]; then
    echo "$BIN"
    exit 0
fi

mkdir -p "$BIN"
export CGO_ENABLED=0
START=$(date +%s)

log() { printf '[build-k8s %4ss] %s\n' "$(( $(date +%s) - START ))" "$*" >&2; }

# go build -v names each package as it is compiled; print a line every 100 so a long first build
# shows it is alive without flooding the log.
progress() {
    awk -v what="$1" '{ n++; if (n % 100 == 0) { printf "[build-k8s] %s: %d packages compiled\n", what, n; fflush() } }
                      END { printf "[build-k8s] %s: %d packages compiled in total\n", what, n }' >&2
}

build() { # <module dir> <label> <ldflags> <package>...
    local dir="$1" label="$2" ldflags="$3"
    shift 3
    log "building $label (first build on a fresh machine takes tens of minutes)"
    # pipefail (set above) makes the pipeline fail when go build fails.
    (cd "$dir" && nice -n "${BUILD_NICE:-10}" go build -v -trimpath -ldflags "-s -w $ldflags" -o "$BIN/" "$@") 2>&1 \
        | tee -a "$BIN/../build.log" | progress "$label"
}

missing() { # prints the names among "$@" that are not in $BIN
    local name
    for name in "$@"; do [[ -x "$BIN/$name" ]] || echo "$name"; done
}

mapfile -t K8S_MISSING < <(missing kube-apiserver kube-controller-manager kube-scheduler kubectl)
if (( ${#K8S_MISSING[@]} )); then
    major="${K8S_VERSION#v}"; major="${major%%.*}"
    minor="${K8S_VERSION#v*.}"; minor="${minor%%.*}"
    ldflags=""
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
        ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    done
    pkgs=()
    for name in "${K8S_MISSING[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$name"); done
    if ! build "$HACK/k8s" "kubernetes $K8S_VERSION (${K8S_MISSING[*]})" "$ldflags" "${pkgs[@]}"; then
        log "FAILED: kubernetes build"; exit 1
    fi
else
    log "kubernetes $K8S_VERSION: cached"
fi

if [[ -n "$(missing etcd)" ]]; then
    if ! build "$HACK/etcd" "etcd $ETCD_VERSION" "" go.etcd.io/etcd/server/v3; then
        log "FAILED: etcd build"; exit 1
    fi
    # go names the binary of go.etcd.io/etcd/server/v3 after the element before the major version.
    mv "$BIN/server" "$BIN/etcd"
else
    log "etcd: cached"
fi

# helm's own Makefile links in the Kubernetes version of its client-go modules (v0.37 -> 1.37), the
# version `helm template` and `helm lint` assume without --kube-version; without it they assume
# v1.20 and refuse the chart's kubeVersion. The flags are stamped beside the binary, so a helm built
# with other flags (an older version of this script) is rebuilt.
CLIENT_GO_VERSION="$(mod_version "$HACK/helm/go.mod" k8s.io/client-go)"
client_minor="${CLIENT_GO_VERSION#v*.}"; client_minor="${client_minor%%.*}"
client_major="${CLIENT_GO_VERSION#v}"; client_major="$(( ${client_major%%.*} + 1 ))"
HELM_LDFLAGS="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
HELM_LDFLAGS+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    HELM_LDFLAGS+=" -X $pkg.k8sVersionMajor=$client_major -X $pkg.k8sVersionMinor=$client_minor"
done
if [[ -n "$(missing helm)" || "$(cat "$BIN/helm.ldflags" 2>/dev/null)" != "$HELM_LDFLAGS" ]]; then
    rm -f "$BIN/helm.ldflags"
    if ! build "$HACK/helm" "helm $HELM_VERSION (Kubernetes $client_major.$client_minor)" "$HELM_LDFLAGS" \
        helm.sh/helm/v3/cmd/helm; then
        log "FAILED: helm build"; exit 1
    fi
    printf '%s' "$HELM_LDFLAGS" > "$BIN/helm.ldflags"
else
    log "helm: cached"
fi

if [[ -n "$(missing versitygw)" ]]; then
    if ! build "$HACK/versitygw" "versitygw $VERSITYGW_VERSION" \
        "-X main.Version=$VERSITYGW_VERSION" github.com/versity/versitygw/cmd/versitygw; then
        log "FAILED: versitygw build"; exit 1
    fi
else
    log "versitygw: cached"
fi

log "done: $(ls "$BIN" | tr '\n' ' ')"
echo "$BIN"
