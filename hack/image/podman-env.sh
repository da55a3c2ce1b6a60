# Sourced by hack/image/*.sh: podman with the project's configuration, never the host's.
# Writes containers.conf and storage.conf under the cache and exports CONTAINERS_CONF and
# CONTAINERS_STORAGE_CONF; the process kubelet sets the same two variables (e2e/harness/images.py).
PODMAN_DIR="${FAISS_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/faiss-operator}/podman"
mkdir -p "$PODMAN_DIR/storage"
# Podman's default ulimits (nofile 1048576) exceed a sandbox's hard limits and every RUN fails:
# the defaults are this machine's own hard limits, nproc no more than 32768 (podman lowers its own
# hard nproc to that, measured with podman 4.3, and a container cannot get more than conmon has).
PODMAN_NOFILE="$(ulimit -Hn)"
PODMAN_NPROC="$(ulimit -Hu)"
[[ "$PODMAN_NOFILE" == unlimited ]] && PODMAN_NOFILE=1048576
[[ "$PODMAN_NPROC" == unlimited || "$PODMAN_NPROC" -gt 32768 ]] && PODMAN_NPROC=32768
cat > "$PODMAN_DIR/containers.conf.new" <<CONF
[containers]
default_ulimits = ["nofile=$PODMAN_NOFILE:$PODMAN_NOFILE", "nproc=$PODMAN_NPROC:$PODMAN_NPROC"]
netns = "host"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
cat > "$PODMAN_DIR/storage.conf.new" <<CONF
[storage]
driver = "overlay"
graphroot = "$PODMAN_DIR/storage"
runroot = "/run/faiss-operator/containers"
CONF
mv "$PODMAN_DIR/containers.conf.new" "$PODMAN_DIR/containers.conf"
mv "$PODMAN_DIR/storage.conf.new" "$PODMAN_DIR/storage.conf"
export CONTAINERS_CONF="$PODMAN_DIR/containers.conf"
export CONTAINERS_STORAGE_CONF="$PODMAN_DIR/storage.conf"
