"""Start and stop one local cluster: etcd, the three control-plane programs and the process kubelet.

All of them (and so every pod) run inside the cluster's own network namespace, its test host
(e2e/harness/testhost.py; why: e2e/harness/addresses.py). Inside, they reach each other on the
namespace's 127.0.0.1; the host reaches the API server at the node address.

Everything else a cluster owns lives in its state directory (certificates, kubeconfigs, etcd data,
pod directories, logs, and `state.json` with the process records and the address block), so
`down` can stop exactly what `up` started, from another process, and remove what it left.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import socket
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import IO, TYPE_CHECKING

from e2e.harness import addresses, kubeconfig, paths, pki, processes, testhost

if TYPE_CHECKING:
    import kubernetes.client

CONTEXT = "faiss-operator-local"
NODE_NAME = "process-node"
STORAGE_CLASS = "standard"
# kube-controller-manager's hostPath provisioner writes here (fixed in its source: /tmp/hostpath_pv/<uuid>).
HOSTPATH_PROVISIONER_ROOT = pathlib.Path("/tmp/hostpath_pv")
# Order of start; stop runs in reverse so nothing loses its API server or etcd while stopping.
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet")


class ClusterError(RuntimeError):
    """The cluster could not be started; the message says which part and why."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: pathlib.Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


class Cluster:
    """One cluster, identified by its state directory."""

    def __init__(self, state_dir: pathlib.Path, *, bin_dir: pathlib.Path | None = None) -> None:
        self.state_dir = state_dir.resolve()
        self._bin_dir = bin_dir
        self._api: kubernetes.client.ApiClient | None = None
        # The block's lock while `up` runs; afterwards the cluster's processes hold it.
        self._block_lock: IO[str] | None = None

    # -- paths -------------------------------------------------------------------------------
    @property
    def bin_dir(self) -> pathlib.Path:
        if self._bin_dir is None:
            self._bin_dir = paths.bin_dir()
        return self._bin_dir

    @property
    def kubeconfig(self) -> pathlib.Path:
        return self.state_dir / "kubeconfig"

    @property
    def logs_dir(self) -> pathlib.Path:
        return self.state_dir / "logs"

    @property
    def kubelet_dir(self) -> pathlib.Path:
        return self.state_dir / "kubelet"

    @property
    def _state_file(self) -> pathlib.Path:
        return self.state_dir / "state.json"

    def _load_state(self) -> dict[str, object]:
        try:
            data = json.loads(self._state_file.read_text())
            assert isinstance(data, dict)
            return data
        except FileNotFoundError:
            return {}

    def records(self) -> list[processes.Record]:
        raw = self._load_state().get("processes", [])
        assert isinstance(raw, list)
        return [processes.Record.from_json(r) for r in raw]

    def _save(self, records: list[processes.Record], ports: dict[str, int]) -> None:
        self._state_file.write_text(json.dumps(
            {"processes": [r.to_json() for r in records], "ports": ports}, indent=2))

    def container_log(self, namespace: str, pod: str, container: str) -> str:
        """The current log of a container run by the process kubelet."""
        from e2e.harness.kubelet import layout  # the kubelet owns its directory layout
        return layout.read_log(self.kubelet_dir, namespace, pod, container)

    # -- up ----------------------------------------------------------------------------------
    def up(self, *, timeout: float = 120.0, progress: Callable[[str], None] = lambda _: None) -> None:
        """Start a fresh cluster and wait until its node is Ready to run pods."""
        if any(processes.alive(r) for r in self.records()):
            raise ClusterError(f"a cluster is already running from {self.state_dir}; run down first")
        missing = paths.missing_binaries(self.bin_dir)
        if missing:
            raise ClusterError(
                f"missing programs in {self.bin_dir}: {', '.join(missing)}; run `make k8s` first")
        self._clean(keep_logs=False)
        self._api = None
        self.state_dir.mkdir(parents=True, exist_ok=True)
        ports = {name: _free_port() for name in
                 ("etcd", "etcd_peer", "apiserver", "controller_manager", "scheduler", "kubelet")}
        testhost.remove_stale()
        try:
            block, self._block_lock = addresses.claim_block()
        except addresses.BlockTaken as exc:
            raise ClusterError(str(exc)) from exc
        ports["address_block"] = block
        records: list[processes.Record] = []
        self._save(records, ports)
        node_ip = addresses.node_address(block)
        service_cidr = str(addresses.service_network(block))

        def start(name: str, argv: list[str], wait: Callable[[], bool], what: str) -> None:
            progress(f"starting {name}")
            log = self.logs_dir / f"{name}.log"
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(
                p for p in (str(paths.REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)}
            assert self._block_lock is not None
            # Every process inherits the block's lock, so the block stays taken while any lives.
            _, record = processes.spawn(name, testhost.enter(block) + argv, log=log, cwd=self.state_dir,
                                        env=env, pass_fds=(self._block_lock.fileno(),))
            records.append(record)
            self._save(records, ports)
            deadline = time.monotonic() + timeout
            while not wait():
                if not processes.alive(record):
                    raise ClusterError(f"{name} exited while starting; last lines of {log}:\n{_tail(log)}")
                if time.monotonic() > deadline:
                    raise ClusterError(f"{name}: {what} not reached in {timeout:.0f}s; last lines of {log}:\n{_tail(log)}")
                time.sleep(0.2)

        b = self.bin_dir
        try:
            progress(f"creating network namespace {addresses.netns_name(block)} (node address {node_ip}); "
                     f"pods get addresses in {addresses.pod_network(block)}, Services in {service_cidr}")
            testhost.create(block)
            progress("creating certificates")
            certs = pki.create(self.state_dir / "pki", service_ip=str(next(addresses.service_network(block).hosts())),
                               node_ip=node_ip)
            # Clients on the host and the kubelet use the node address; the controller-manager and
            # the scheduler the namespace's loopback.
            kubeconfig.write(self.kubeconfig, server=f"https://{node_ip}:{ports['apiserver']}",
                             ca=certs.ca.cert, client=certs.admin, name=CONTEXT)
            inside = f"https://127.0.0.1:{ports['apiserver']}"
            cm_config = self.state_dir / "controller-manager.kubeconfig"
            sched_config = self.state_dir / "scheduler.kubeconfig"
            kubeconfig.write(cm_config, server=inside, ca=certs.ca.cert, client=certs.controller_manager, name=CONTEXT)
            kubeconfig.write(sched_config, server=inside, ca=certs.ca.cert, client=certs.scheduler, name=CONTEXT)
            start("etcd", [
                str(b / "etcd"), "--name=local", f"--data-dir={self.state_dir / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{ports['etcd']},http://{node_ip}:{ports['etcd']}",
                f"--advertise-client-urls=http://127.0.0.1:{ports['etcd']}",
                f"--listen-peer-urls=http://127.0.0.1:{ports['etcd_peer']}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{ports['etcd_peer']}",
                f"--initial-cluster=local=http://127.0.0.1:{ports['etcd_peer']}",
                "--unsafe-no-fsync=true", "--log-level=warn",
            ], lambda: self._http_ok(f"http://{node_ip}:{ports['etcd']}/health"), "/health")
            start("kube-apiserver", [
                str(b / "kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{ports['etcd']}",
                # 127.0.0.1 inside the namespace for pods and the control plane, the node address for the host.
                "--bind-address=0.0.0.0", "--advertise-address=127.0.0.1",
                f"--secure-port={ports['apiserver']}",
                f"--cert-dir={self.state_dir / 'pki'}",
                f"--tls-cert-file={certs.apiserver.cert}", f"--tls-private-key-file={certs.apiserver.key}",
                f"--client-ca-file={certs.ca.cert}",
                f"--kubelet-client-certificate={certs.apiserver_kubelet_client.cert}",
                f"--kubelet-client-key={certs.apiserver_kubelet_client.key}",
                f"--service-account-key-file={certs.sa_public}",
                f"--service-account-signing-key-file={certs.sa_private}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                "--authorization-mode=RBAC", "--allow-privileged=true",
                f"--service-cluster-ip-range={service_cidr}",
                # The endpoint reconciler refuses a loopback advertise address; nothing routes
                # the kubernetes Service here anyway (no kube-proxy).
                "--endpoint-reconciler-type=none",
                # The node's only address the API server can dial (for `kubectl logs`).
                "--kubelet-preferred-address-types=InternalIP",
            ], lambda: self._readyz(f"https://{node_ip}:{ports['apiserver']}/readyz", certs), "/readyz")
            start("kube-controller-manager", [
                str(b / "kube-controller-manager"),
                f"--kubeconfig={cm_config}", f"--authentication-kubeconfig={cm_config}",
                f"--authorization-kubeconfig={cm_config}",
                f"--bind-address={node_ip}", f"--secure-port={ports['controller_manager']}",
                "--leader-elect=false", "--use-service-account-credentials=true",
                f"--service-account-private-key-file={certs.sa_private}",
                f"--root-ca-file={certs.ca.cert}",
                f"--cluster-signing-cert-file={certs.ca.cert}", f"--cluster-signing-key-file={certs.ca.key}",
                "--enable-hostpath-provisioner=true", "--allocate-node-cidrs=false",
                f"--service-cluster-ip-range={service_cidr}",
            ], lambda: self._http_ok(f"https://{node_ip}:{ports['controller_manager']}/healthz"), "/healthz")
            start("kube-scheduler", [
                str(b / "kube-scheduler"),
                f"--kubeconfig={sched_config}", f"--authentication-kubeconfig={sched_config}",
                f"--authorization-kubeconfig={sched_config}",
                f"--bind-address={node_ip}", f"--secure-port={ports['scheduler']}", "--leader-elect=false",
            ], lambda: self._http_ok(f"https://{node_ip}:{ports['scheduler']}/healthz"), "/healthz")
            progress("waiting for the default namespace and its service account")
            self._wait_default_service_account(timeout)
            self._ensure_storage_class()
            self._ensure_runtime_classes()
            start("kubelet", [
                sys.executable, "-m", "e2e.harness.kubelet",
                f"--kubeconfig={self.kubeconfig}", f"--node-name={NODE_NAME}",
                f"--state-dir={self.kubelet_dir}", f"--port={ports['kubelet']}",
                f"--tls-cert={certs.kubelet.cert}", f"--tls-key={certs.kubelet.key}",
                f"--apiserver-port={ports['apiserver']}", f"--venv-bin={paths.venv_bin()}",
                f"--address-block={block}",
            ], self._node_ready, f"node {NODE_NAME} Ready")
        except BaseException:
            self.down()
            raise
        assert self._block_lock is not None
        self._block_lock.close()
        self._block_lock = None
        progress(f"cluster up; export KUBECONFIG={self.kubeconfig}")

    def _client_context(self, certs: pki.ClusterPKI) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(certs.ca.cert))
        ctx.load_cert_chain(str(certs.admin.cert), str(certs.admin.key))
        return ctx

    def _http_ok(self, url: str) -> bool:
        ctx = None
        if url.startswith("https"):
            # The health endpoints of the controller-manager and scheduler use self-signed certs.
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        try:
            with urllib.request.urlopen(url, timeout=2, context=ctx) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def _readyz(self, url: str, certs: pki.ClusterPKI) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2,
                                        context=self._client_context(certs)) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def api_client(self) -> "kubernetes.client.ApiClient":
        """A client of this cluster's API server with the admin identity."""
        from kubernetes import client, config
        if self._api is None:
            api = config.new_client_from_config(config_file=str(self.kubeconfig))  # type: ignore[no-untyped-call]
            assert isinstance(api, client.ApiClient)
            self._api = api
        return self._api

    def _wait_default_service_account(self, timeout: float) -> None:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException
        core = client.CoreV1Api(self.api_client())
        deadline = time.monotonic() + timeout
        while True:
            try:
                core.read_namespace("default")
                core.read_namespaced_service_account("default", "default")
                core.read_namespaced_config_map("kube-root-ca.crt", "default")
                return
            except ApiException as exc:
                if exc.status != 404 or time.monotonic() > deadline:
                    raise ClusterError(f"default namespace/service account not ready: {exc.reason}") from exc
            time.sleep(0.2)

    def _ensure_storage_class(self) -> None:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException
        storage = client.StorageV1Api(self.api_client())
        body: dict[str, object] = {
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": STORAGE_CLASS,
                         "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "kubernetes.io/host-path", "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate",
        }
        try:
            storage.create_storage_class(body)  # type: ignore[arg-type]
        except ApiException as exc:
            if exc.status != 409:
                raise

    def _ensure_runtime_classes(self) -> None:
        """RuntimeClasses `process` and `runc`, the process kubelet's two runtime handlers: a pod
        picks one with runtimeClassName (the node's default is FAISS_KUBELET_RUNTIME, see
        e2e/harness/kubelet/__main__.py)."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException
        node = client.NodeV1Api(self.api_client())
        for handler in ("process", "runc"):
            body = {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
                    "metadata": {"name": handler}, "handler": handler}
            try:
                node.create_runtime_class(body)  # type: ignore[arg-type]
            except ApiException as exc:
                if exc.status != 409:
                    raise

    def _node_ready(self) -> bool:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException
        try:
            node = client.CoreV1Api(self.api_client()).read_node(NODE_NAME)
        except (ApiException, OSError):
            return False
        conditions = node.status.conditions if node.status else None
        return any(c.type == "Ready" and c.status == "True" for c in conditions or [])

    # -- down / status -----------------------------------------------------------------------
    def down(self) -> None:
        """Stop every process this cluster started, then remove its data (logs stay)."""
        self._delete_provisioned_volumes()
        for record in reversed(self.records()):
            processes.stop(record, grace_seconds=30 if record.name == "kubelet" else 10)
        # Pods whose kubelet died without stopping them (runc's containers outlive runc's process).
        from e2e.harness.kubelet import layout, runc
        for record in layout.pod_process_records(self.kubelet_dir):
            processes.stop(record, grace_seconds=2)
            key, _, container = record.name.partition("/")
            if shutil.which("runc"):
                runc.remove_leftover(key, container, layout.bundle_dir(layout.pod_dir(self.kubelet_dir, key), container))
        self._remove_test_host()
        self._clean(keep_logs=True)

    @property
    def address_block(self) -> int | None:
        """N of the cluster's network namespace faiss-node-N and its addresses (see addresses.py)."""
        ports = self._load_state().get("ports")
        block = ports.get("address_block") if isinstance(ports, dict) else None
        return block if isinstance(block, int) else None

    def _remove_test_host(self) -> None:
        block = self.address_block
        if block is None:
            return
        held, self._block_lock = self._block_lock, None
        # A stopped multi-threaded process can look dead (its leader a zombie) a moment before
        # its last thread closes the inherited lock.
        deadline = time.monotonic() + 10
        while held is None:
            try:
                held = addresses.lock(block)
            except addresses.BlockTaken:
                if any(processes.alive(r) for r in self.records()) or time.monotonic() > deadline:
                    return  # a process of the cluster survived, or another cluster owns the block by now
                time.sleep(0.05)
        with held:
            testhost.remove(block)

    def _delete_provisioned_volumes(self) -> None:
        """Directories the hostPath provisioner made for this cluster's claims."""
        if not any(processes.alive(r) for r in self.records() if r.name == "kube-apiserver"):
            return
        try:
            from kubernetes import client
            pvs = client.CoreV1Api(self.api_client()).list_persistent_volume(_request_timeout=5).items
        except Exception:  # noqa: BLE001 - best effort: the API server may be half down
            return
        for pv in pvs:
            host_path = pv.spec.host_path.path if pv.spec and pv.spec.host_path else None
            if host_path and pathlib.Path(host_path).resolve().is_relative_to(HOSTPATH_PROVISIONER_ROOT):
                shutil.rmtree(host_path, ignore_errors=True)

    def _clean(self, *, keep_logs: bool) -> None:
        if not self.state_dir.exists():
            return
        for child in self.state_dir.iterdir():
            if keep_logs and child.name == "logs":
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()

    def status(self) -> dict[str, str]:
        """Each component's state: running (pid) or stopped."""
        result = {name: "stopped" for name in COMPONENTS}
        for record in self.records():
            result[record.name] = f"running (pid {record.pid})" if processes.alive(record) else "stopped"
        return result

