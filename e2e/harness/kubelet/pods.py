"""One pod on this node, from its first sight to its deletion: a thread per pod.

The worker sets up the volumes, runs init containers in order and then the containers, applies
restartPolicy with exponential back-off, runs the probes, and reports the pod status the way the
kubelet does (phase, conditions, container states). When the pod is deleted it sends SIGTERM,
waits the grace period, sends SIGKILL, reports the final status and removes the pod object.
"""

from __future__ import annotations

import copy
import json
import logging
import pathlib
import shutil
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from kubernetes.client.exceptions import ApiException

from e2e.harness import paths
from e2e.harness.kubelet import containers, envvars, imagerun, images, kube, layout, ocispec, probes, runc, volumes

Obj = dict[str, Any]
log = logging.getLogger("kubelet.pods")
TICK_SECONDS = 0.2
SHUTDOWN_GRACE_SECONDS = 5.0
PROCESS, RUNC = "process", "runc"  # the runtime handlers of this node


class NodeContext:
    """What every pod worker shares: the API, the node's identity and its directories."""

    def __init__(self, *, kube_api: kube.Kube, node_name: str, state_dir: pathlib.Path,
                 apiserver_port: int, venv_bin: pathlib.Path, backoff_base: float,
                 default_runtime: str = PROCESS, image_store: images.Store | None = None,
                 process_images: frozenset[str] = frozenset()) -> None:
        self.kube = kube_api
        self.node_name = node_name
        self.state_dir = state_dir
        self.apiserver_port = apiserver_port
        self.venv_bin = venv_bin
        self.backoff_base = backoff_base
        self.host_ip = "127.0.0.1"
        # The runtime handler of pods that name no RuntimeClass: PROCESS (a process of the host's
        # filesystem) or RUNC (from the image under runc, but for the images in process_images).
        self.default_runtime = default_runtime
        self.image_store = image_store or images.Store()
        self.process_images = process_images

    def runtime_handler(self, pod: Obj) -> str:
        """The handler of the pod's RuntimeClass (node.k8s.io/v1), else the node's default."""
        name = pod["spec"].get("runtimeClassName")
        if not name:
            return self.default_runtime
        runtime_class = self.kube.get(f"/apis/node.k8s.io/v1/runtimeclasses/{name}")
        return str((runtime_class or {}).get("handler") or name)


class PodWorker(threading.Thread):
    def __init__(self, ctx: NodeContext, pod: Obj, pod_ip: str, on_done: Callable[[PodWorker], None]) -> None:
        meta = pod["metadata"]
        super().__init__(name=f"pod-{meta['namespace']}/{meta['name']}", daemon=True)
        self.ctx = ctx
        self.uid: str = meta["uid"]
        self.namespace: str = meta["namespace"]
        self.pod_name: str = meta["name"]
        self.key = layout.pod_key(self.namespace, self.pod_name, self.uid)
        self.pod_dir = layout.pod_dir(ctx.state_dir, self.key)
        self.pod_ip = pod_ip
        self._latest: Obj | None = pod
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._shutdown = False
        self._on_done = on_done
        spec = pod["spec"]
        self.init_containers = [containers.Container(spec=c, init=True) for c in spec.get("initContainers") or []]
        self.containers = [containers.Container(spec=c, init=False) for c in spec.get("containers") or []]
        self.restart_policy: str = spec.get("restartPolicy") or "Always"
        self.start_time = containers.now_rfc3339()
        self.volume_paths: dict[str, pathlib.Path] | None = None
        self.volume_message = ""
        self.next_volume_try = 0.0
        self.init_failed = False
        self._sent_status: str | None = None
        self._conditions: dict[str, Obj] = {}
        self.runtime: str | None = None  # the RuntimeClass handler, looked up with the volumes

    # -- called by the agent -------------------------------------------------------------------
    def update(self, pod: Obj | None) -> None:
        with self._lock:
            self._latest = pod
        self._wake.set()

    def shutdown(self) -> None:
        self._shutdown = True
        self._wake.set()

    # -- the loop ------------------------------------------------------------------------------
    def run(self) -> None:
        try:
            self._loop()
        except Exception:  # noqa: BLE001 - a broken pod must not take the node down
            log.error("Pod worker failed pod=%s/%s\n%s", self.namespace, self.pod_name, traceback.format_exc())
        finally:
            containers.stop_all(self.init_containers + self.containers, 0)
            shutil.rmtree(self.pod_dir, ignore_errors=True)
            self._on_done(self)

    def _loop(self) -> None:
        while True:
            with self._lock:
                pod = self._latest
            if self._shutdown:
                containers.stop_all(self.all_containers, min(self._grace(pod), SHUTDOWN_GRACE_SECONDS))
                return
            if pod is None:  # removed from the API without a graceful deletion
                containers.stop_all(self.all_containers, 2)
                return
            if pod["metadata"].get("deletionTimestamp"):
                self._terminate(pod)
                return
            if self.volume_paths is None:
                self._setup_volumes(pod)
            if self.volume_paths is not None and self._phase() not in ("Succeeded", "Failed"):
                self._step(pod)
            self._push_status(pod)
            self._wake.wait(TICK_SECONDS)
            self._wake.clear()

    @property
    def all_containers(self) -> list[containers.Container]:
        return self.init_containers + self.containers

    def _grace(self, pod: Obj | None) -> float:
        if pod is None:
            return 2.0
        grace = pod["metadata"].get("deletionGracePeriodSeconds")
        if grace is None:
            grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
        return float(grace)

    def _terminate(self, pod: Obj) -> None:
        grace = self._grace(pod)
        log.info("Stopping pod pod=%s/%s grace=%ss", self.namespace, self.pod_name, grace)
        containers.stop_all(self.all_containers, grace)
        for c in self.all_containers:
            c.waiting = None if c.terminated else c.waiting
        self._push_status(pod)
        try:
            self.ctx.kube.request(
                "DELETE", f"/api/v1/namespaces/{self.namespace}/pods/{self.pod_name}",
                body={"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
                      "preconditions": {"uid": self.uid}})
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

    # -- setup ---------------------------------------------------------------------------------
    def _get(self, kind: str, namespace: str, name: str) -> Obj | None:
        paths = {
            "configmap": f"/api/v1/namespaces/{namespace}/configmaps/{name}",
            "secret": f"/api/v1/namespaces/{namespace}/secrets/{name}",
            "pvc": f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{name}",
            "pv": f"/api/v1/persistentvolumes/{name}",
        }
        return self.ctx.kube.get(paths[kind])

    def _issue_token(self, pod: Obj, source: Obj) -> str:
        sa = pod["spec"].get("serviceAccountName") or "default"
        body = {
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {
                "audiences": [source["audience"]] if source.get("audience") else [],
                "expirationSeconds": int(source.get("expirationSeconds") or 3607),
                "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": self.pod_name, "uid": self.uid},
            },
        }
        result = self.ctx.kube.request(
            "POST", f"/api/v1/namespaces/{self.namespace}/serviceaccounts/{sa}/token", body=body)
        return str(result["status"]["token"])

    def _setup_volumes(self, pod: Obj) -> None:
        now = time.monotonic()
        if now < self.next_volume_try:
            return
        try:
            if self.runtime is None:
                runtime = self.ctx.runtime_handler(pod)
                if runtime not in (PROCESS, RUNC):
                    raise volumes.VolumeNotReady(f'Failed to create pod sandbox: no runtime for "{runtime}" '
                                                 f"is configured (this node has {PROCESS!r} and {RUNC!r})")
                self.runtime = runtime
            volume_paths = volumes.prepare(self._with_ips(pod), self.pod_dir, self._get, self._issue_token)
            if self.runtime == RUNC:  # processes run as root: no ownership to manage
                volumes.apply_fs_group(pod, volume_paths)
            self.volume_paths = volume_paths
            self.volume_message = ""
        except (volumes.VolumeNotReady, envvars.EnvError, ApiException) as exc:
            self.volume_message = str(exc) if not isinstance(exc, ApiException) else f"{exc.status} {exc.reason}"
            self.next_volume_try = now + 1.0

    def _with_ips(self, pod: Obj) -> Obj:
        out = copy.deepcopy(pod)
        status = out.setdefault("status", {})
        status["podIP"] = self.pod_ip
        status["hostIP"] = self.ctx.host_ip
        return out

    def _base_env(self, pod: Obj) -> dict[str, str]:
        port = str(self.ctx.apiserver_port)
        # The in-cluster address of the API server: no kube-proxy routes the Service IP here.
        return {
            "PATH": containers.DEFAULT_PATH,
            "HOSTNAME": self.pod_name,
            "HOME": "/root",
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": port,
            "KUBERNETES_SERVICE_PORT_HTTPS": port,
            "KUBERNETES_PORT": f"tcp://127.0.0.1:{port}",
            "KUBERNETES_PORT_443_TCP": f"tcp://127.0.0.1:{port}",
            "KUBERNETES_PORT_443_TCP_ADDR": "127.0.0.1",
            "KUBERNETES_PORT_443_TCP_PORT": port,
            "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
        }

    def _start(self, c: containers.Container, pod: Obj) -> None:
        assert self.volume_paths is not None
        image = str(c.spec.get("image") or "")
        if self.runtime == RUNC and images.short_name(image) not in self.ctx.process_images:
            self._start_from_image(c, pod)
            return
        full = self._with_ips(pod)
        try:
            env = envvars.resolve(c.spec, full, lambda kind, name: self._get(kind, self.namespace, name),
                                  self._base_env(pod))
            argv = containers.argv_of(c.spec, env)
            mounts = volumes.mounts(c.spec, self.volume_paths)
            mounts += volumes.keep_visible(mounts, [paths.REPO_ROOT, self.ctx.venv_bin.parent])
        except (envvars.EnvError, containers.ConfigError, volumes.VolumeNotReady) as exc:
            c.waiting = ("CreateContainerConfigError", str(exc))
            c.next_start_at = time.monotonic() + 2
            return
        # The mapping to the host: the repository's environment first on PATH, the pod address
        # for Python servers that bind the wildcard (see shim/sitecustomize.py).
        env["PATH"] = f"{self.ctx.venv_bin}:{env.get('PATH') or containers.DEFAULT_PATH}"
        env["PYTHONPATH"] = ":".join(p for p in (str(containers.SHIM_DIR), env.get("PYTHONPATH", "")) if p)
        if self.pod_ip != self.ctx.host_ip:  # hostNetwork pods bind as they like
            env["PROCESS_KUBELET_POD_IP"] = self.pod_ip
        c.start(pod_dir=self.pod_dir, state_dir=self.ctx.state_dir, key=self.key,
                mounts=mounts, env=env, argv=argv)
        log.info("Started container pod=%s/%s container=%s pid=%s argv=%s", self.namespace, self.pod_name,
                 c.name, c.run.popen.pid if c.run else None, argv)

    def _start_from_image(self, c: containers.Container, pod: Obj) -> None:
        assert self.volume_paths is not None
        reference = str(c.spec.get("image") or "")
        try:
            image = self.ctx.image_store.get(reference)
        except images.ImageNotPresent as exc:
            c.waiting = ("ErrImageNeverPull", str(exc))
            c.next_start_at = time.monotonic() + 2
            return
        c.image_id = f"sha256:{image.id}"
        try:
            base = {k: v for k, v in self._base_env(pod).items() if k not in ("PATH", "HOME")}
            env = envvars.resolve(c.spec, self._with_ips(pod),
                                  lambda kind, name: self._get(kind, self.namespace, name), base)
            run = imagerun.prepare(pod=pod, container=c.spec, image=image, store=self.ctx.image_store, env=env,
                                   volume_paths=self.volume_paths, pod_dir=self.pod_dir,
                                   pod_ip=self.pod_ip, host_network=self.pod_ip == self.ctx.host_ip)
        except (envvars.EnvError, ocispec.ConfigError, volumes.VolumeNotReady) as exc:
            c.waiting = ("CreateContainerConfigError", str(exc))
            c.next_start_at = time.monotonic() + 2
            return
        c.start_image(pod_dir=self.pod_dir, state_dir=self.ctx.state_dir, key=self.key, run=run,
                      image_layers=image.layers, container_id=runc.container_id(self.key, c.name))
        log.info("Started container from image pod=%s/%s container=%s image=%s id=%s argv=%s", self.namespace,
                 self.pod_name, c.name, reference, image.id[:12], list(run.argv))

    # -- containers ----------------------------------------------------------------------------
    def _backoff(self, c: containers.Container) -> float:
        return float(min(self.ctx.backoff_base * 2 ** max(c.restart_count, 0), 300.0))

    def _after_exit(self, c: containers.Container) -> None:
        assert c.terminated is not None
        failed = c.terminated["exitCode"] != 0
        restart = self.restart_policy == "Always" or (self.restart_policy == "OnFailure" and failed)
        if c.init and not failed:
            return
        if restart:
            c.prepare_restart(self._backoff(c))
        elif c.init:
            self.init_failed = True

    def _step(self, pod: Obj) -> None:
        now = time.monotonic()
        for c in self.init_containers:
            if c.terminated and c.terminated["exitCode"] == 0 and c.run is None:
                continue
            if c.run is not None:
                if c.poll():
                    self._after_exit(c)
                return
            if self.init_failed:
                return
            if now >= c.next_start_at:
                self._start(c, pod)
            return
        for c in self.containers:
            if c.run is not None:
                if c.poll():
                    self._after_exit(c)
                else:
                    self._probe(c)
            elif (c.restart_count < 0 or c.waiting is not None) and now >= c.next_start_at:
                self._start(c, pod)

    def _probe(self, c: containers.Container) -> None:
        run = c.run
        assert run is not None
        now = time.monotonic()

        def attempt(state: probes.ProbeState) -> None:
            if state.due(now):
                ok, message = probes.run_once(state.probe, container=c.spec, pod_ip=self.pod_ip,
                                              pid=run.popen.pid, env=run.env, image_run=run.image_run)
                state.record(ok, message, time.monotonic())

        if c.startup is not None and not c.started:
            attempt(c.startup)
            if c.startup.result is True:
                c.started = True
            elif c.startup.result is False:
                self._restart_unhealthy(c, f"Startup probe failed: {c.startup.message}")
            return
        if c.liveness is not None:
            attempt(c.liveness)
            if c.liveness.result is False:
                self._restart_unhealthy(c, f"Liveness probe failed: {c.liveness.message}")
                return
        if c.readiness is not None:
            attempt(c.readiness)
            c.ready = c.readiness.result is True
        else:
            c.ready = c.started

    def _restart_unhealthy(self, c: containers.Container, why: str) -> None:
        log.info("Killing unhealthy container pod=%s/%s container=%s reason=%s",
                 self.namespace, self.pod_name, c.name, why)
        with self._lock:
            pod = self._latest
        containers.stop_all([c], float((pod or {}).get("spec", {}).get("terminationGracePeriodSeconds", 30)))
        if c.terminated is not None:
            c.terminated["message"] = why
            self._after_exit(c)

    # -- status --------------------------------------------------------------------------------
    def _phase(self) -> str:
        if self.init_failed:
            return "Failed"
        if any(not (c.terminated and c.terminated["exitCode"] == 0) for c in self.init_containers):
            return "Pending"
        if any(c.run is not None for c in self.containers):
            return "Running"
        if self.containers and all(c.terminated is not None and c.waiting is None for c in self.containers):
            return "Succeeded" if all(c.terminated and c.terminated["exitCode"] == 0
                                      for c in self.containers) else "Failed"
        if any(c.restart_count >= 0 for c in self.containers):
            return "Running"
        return "Pending"

    def _condition(self, kind: str, ok: bool, reason: str = "", message: str = "") -> Obj:
        status = "True" if ok else "False"
        previous = self._conditions.get(kind)
        since = previous["lastTransitionTime"] if previous and previous["status"] == status else containers.now_rfc3339()
        # Strategic merge keeps fields a patch leaves out: an empty reason or message is sent as
        # null so that it is removed.
        cond: Obj = {"type": kind, "status": status, "lastProbeTime": None, "lastTransitionTime": since,
                     "reason": reason or None, "message": message or None}
        self._conditions[kind] = cond
        return cond

    def _status(self) -> Obj:
        phase = self._phase()
        terminal = phase in ("Succeeded", "Failed")
        for c in self.all_containers:
            if self.volume_paths is None and c.restart_count < 0:
                c.waiting = ("ContainerCreating", self.volume_message)
            elif c.restart_count < 0 and c.init is False and c.waiting and c.waiting[0] == "ContainerCreating":
                c.waiting = ("PodInitializing", "") if phase == "Pending" else c.waiting
        initialized = phase != "Pending" or all(
            c.terminated and c.terminated["exitCode"] == 0 for c in self.init_containers)
        unready = [c.name for c in self.containers if not c.ready]
        not_init = [c.name for c in self.init_containers if not (c.terminated and c.terminated["exitCode"] == 0)]
        ready_reason = "PodCompleted" if terminal else ("ContainersNotReady" if unready else "")
        ready_message = "" if terminal or not unready else f"containers with unready status: [{' '.join(unready)}]"
        conditions = [
            self._condition("PodReadyToStartContainers", self.volume_paths is not None),
            self._condition("Initialized", bool(initialized) and not self.init_failed,
                            "" if initialized else "ContainersNotInitialized",
                            "" if initialized else f"containers with incomplete status: [{' '.join(not_init)}]"),
            self._condition("ContainersReady", not unready and not terminal, ready_reason, ready_message),
            self._condition("Ready", not unready and not terminal, ready_reason, ready_message),
        ]
        status: Obj = {
            "phase": phase,
            "conditions": conditions,
            "hostIP": self.ctx.host_ip,
            "hostIPs": [{"ip": self.ctx.host_ip}],
            "podIP": self.pod_ip,
            "podIPs": [{"ip": self.pod_ip}],
            "startTime": self.start_time,
            "containerStatuses": [c.status() for c in self.containers],
        }
        if self.init_containers:
            status["initContainerStatuses"] = [c.status() for c in self.init_containers]
        return status

    def _push_status(self, pod: Obj) -> None:
        status = self._status()
        encoded = json.dumps(status, sort_keys=True)
        if encoded == self._sent_status:
            return
        try:
            self.ctx.kube.request(
                "PATCH", f"/api/v1/namespaces/{self.namespace}/pods/{self.pod_name}/status",
                body={"metadata": {"uid": self.uid}, "status": status}, content_type=kube.STRATEGIC)
            self._sent_status = encoded
        except ApiException as exc:
            if exc.status == 404:
                self.update(None)
            else:
                log.warning("Failed to patch pod status pod=%s/%s status=%s body=%s",
                            self.namespace, self.pod_name, exc.status, getattr(exc, "body", ""))
