"""One container of a pod as a local process: start it, watch it exit, stop it, describe it.

A container keeps its identity across restarts (restart count, last terminated state); each run
is a fresh process with a fresh copy-on-write root, a fresh log file and a fresh termination
message file.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time
from typing import Any

from e2e.harness import processes
from e2e.harness.kubelet import layout, ocispec, probes, runc

Obj = dict[str, Any]
NSINIT = pathlib.Path(__file__).with_name("nsinit.py")
SHIM_DIR = pathlib.Path(__file__).with_name("shim")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MAX_TERMINATION_MESSAGE = 4096

# No image is pulled: an image's ENTRYPOINT is looked up here by the image's name (without
# registry and tag) when a container gives no command.
IMAGE_ENTRYPOINTS: dict[str, list[str]] = {
    "faiss-operator": ["faiss-operator"],
    "python": ["python3"],
}


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


ConfigError = ocispec.ConfigError


def argv_of(spec: Obj, env: dict[str, str]) -> list[str]:
    """command + args with $(VAR) expanded; the image's entrypoint from IMAGE_ENTRYPOINTS."""
    from e2e.harness.kubelet import envvars

    command = list(spec.get("command") or [])
    args = list(spec.get("args") or [])
    if not command:
        image = str(spec.get("image") or "")
        name = image.rsplit("/", 1)[-1].split("@", 1)[0].split(":", 1)[0]
        if name not in IMAGE_ENTRYPOINTS:
            raise ConfigError(
                f"image {image!r}: no image is pulled on this node and it has no known entrypoint; "
                f"give the container a command (known images: {', '.join(sorted(IMAGE_ENTRYPOINTS))})")
        command = list(IMAGE_ENTRYPOINTS[name])
    return [envvars.expand(a, env) for a in command + args]


@dataclasses.dataclass
class Run:
    """One process of a container."""

    popen: subprocess.Popen[bytes]
    record: processes.Record
    record_file: pathlib.Path
    started_at: str
    started_mono: float
    termination_file: pathlib.Path
    log_file: pathlib.Path
    env: dict[str, str]
    killed_by_kubelet: bool = False
    image_run: runc.Handle | None = None  # None: a process of the host's filesystem

    @property
    def container_id(self) -> str:
        if self.image_run is not None:
            return f"runc://{self.image_run.container_id}"
        return f"process://{self.popen.pid}"


@dataclasses.dataclass
class Container:
    spec: Obj
    init: bool
    restart_count: int = -1  # becomes 0 at the first start
    run: Run | None = None
    terminated: Obj | None = None  # state of the last run once it has exited
    last_terminated: Obj | None = None  # the run before that
    waiting: tuple[str, str] | None = ("ContainerCreating", "")
    next_start_at: float = 0.0
    image_id: str = ""  # of the image the runc path runs ("sha256:<id>", as containerd reports a local image)
    ready: bool = False
    started: bool = False
    readiness: probes.ProbeState | None = None
    liveness: probes.ProbeState | None = None
    startup: probes.ProbeState | None = None

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    @property
    def running(self) -> bool:
        return self.run is not None

    def _begin(self, *, pod_dir: pathlib.Path, state_dir: pathlib.Path,
               key: str) -> tuple[pathlib.Path, pathlib.Path, pathlib.Path]:
        """A fresh run's directory, termination-message file and log file."""
        self.restart_count += 1
        work = layout.container_dir(pod_dir, self.name)
        for sub in ("upper", "work", "root"):
            target = work / sub
            if target.exists() and not os.path.ismount(target):
                shutil.rmtree(target)
        work.mkdir(parents=True, exist_ok=True)
        termination = work / "termination-log"
        termination.write_bytes(b"")
        termination.chmod(0o666)
        log_file = layout.log_dir(state_dir, key, self.name) / f"{self.restart_count}.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        return work, termination, log_file

    def _started(self, *, popen: subprocess.Popen[bytes], state_dir: pathlib.Path, key: str,
                 termination: pathlib.Path, log_file: pathlib.Path, env: dict[str, str],
                 image_run: runc.Handle | None = None) -> None:
        started = processes.start_time_of(popen.pid) or 0
        record = processes.Record(name=f"{key}/{self.name}", pid=popen.pid, start_time=started)
        self.run = Run(popen=popen, record=record, record_file=layout.write_pid_record(state_dir, record),
                       started_at=now_rfc3339(), started_mono=time.monotonic(),
                       termination_file=termination, log_file=log_file, env=env, image_run=image_run)
        self.terminated = None
        self.waiting = None
        self.ready = False
        self.started = self.spec.get("startupProbe") is None
        self.readiness = probes.new_state(self.spec.get("readinessProbe"))
        self.liveness = probes.new_state(self.spec.get("livenessProbe"))
        self.startup = probes.new_state(self.spec.get("startupProbe"))

    def start(self, *, pod_dir: pathlib.Path, state_dir: pathlib.Path, key: str,
              mounts: list[Obj], env: dict[str, str], argv: list[str]) -> None:
        """A run as a process of the host's filesystem (nsinit.py)."""
        work, termination, log_file = self._begin(pod_dir=pod_dir, state_dir=state_dir, key=key)
        spec = {
            "pod_dir": str(pod_dir),
            "root": str(work / "root"), "upper": str(work / "upper"), "work": str(work / "work"),
            "mounts": mounts + [{"source": str(termination),
                                 "target": self.spec.get("terminationMessagePath") or "/dev/termination-log"}],
            "workingDir": self.spec.get("workingDir") or "",
            "argv": argv, "env": env,
        }
        spec_file = work / "spec.json"
        spec_file.write_text(json.dumps(spec))
        with log_file.open("ab") as out:
            popen = subprocess.Popen(
                [sys.executable, "-I", "-S", str(NSINIT), str(spec_file)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={"PATH": DEFAULT_PATH}, start_new_session=True,
            )
        self._started(popen=popen, state_dir=state_dir, key=key, termination=termination,
                      log_file=log_file, env=env)

    def start_image(self, *, pod_dir: pathlib.Path, state_dir: pathlib.Path, key: str,
                    run: ocispec.Run, image_layers: tuple[pathlib.Path, ...], container_id: str) -> None:
        """A run from an image's root filesystem under runc (runc.py); `run` without the
        termination-message mount, which is added here."""
        work, termination, log_file = self._begin(pod_dir=pod_dir, state_dir=state_dir, key=key)
        target = self.spec.get("terminationMessagePath") or "/dev/termination-log"
        run = dataclasses.replace(run, mounts=run.mounts + (ocispec.Mount(str(termination), target),))
        with log_file.open("ab") as out:
            handle = runc.start(run=run, image_layers=image_layers, bundle=layout.bundle_dir(pod_dir, self.name),
                                container_id=container_id, log=out)
        self._started(popen=handle.popen, state_dir=state_dir, key=key, termination=termination,
                      log_file=log_file, env=dict(run.env), image_run=handle)

    def poll(self) -> bool:
        """Collect the exit of the running process; True if it exited just now."""
        run = self.run
        if run is None:
            return False
        code = run.popen.poll()
        if code is None:
            return False
        self._finish(run, code)
        return True

    def _finish(self, run: Run, code: int) -> None:
        # Whatever the main process left behind in its session goes with it, as in a container.
        try:
            os.killpg(run.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        exit_code = code if code >= 0 else 128 - code
        oom_killed = run.image_run.finish() if run.image_run is not None else False
        message = run.termination_file.read_bytes()[:MAX_TERMINATION_MESSAGE].decode(errors="replace")
        if (not message and exit_code != 0
                and self.spec.get("terminationMessagePolicy") == "FallbackToLogsOnError"):
            lines = run.log_file.read_bytes()[-2048:].decode(errors="replace").splitlines()[-80:]
            message = "\n".join(lines)
        state: Obj = {
            "exitCode": exit_code,
            "reason": "OOMKilled" if oom_killed else "Completed" if exit_code == 0 else "Error",
            "startedAt": run.started_at,
            "finishedAt": now_rfc3339(),
            "containerID": run.container_id,
        }
        if message:
            state["message"] = message
        self.terminated = state
        self.run = None
        self.ready = False
        run.record_file.unlink(missing_ok=True)

    def signal(self, sig: int) -> None:
        if self.run is not None:
            self.run.killed_by_kubelet = True
            if self.run.image_run is not None:  # runc cannot forward a SIGKILL sent to itself
                self.run.image_run.kill(sig)
                return
            try:
                os.killpg(self.run.popen.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass

    def prepare_restart(self, delay: float) -> None:
        """Remember the last run's state and wait `delay` before the next start."""
        self.last_terminated = self.terminated
        self.next_start_at = time.monotonic() + delay
        self.waiting = ("CrashLoopBackOff", f"back-off {delay:.0f}s restarting failed container={self.name}")

    def status(self) -> Obj:
        state: Obj
        if self.run is not None:
            state = {"running": {"startedAt": self.run.started_at}}
        elif self.terminated is not None and self.waiting is None:
            state = {"terminated": self.terminated}
        else:
            reason, message = self.waiting or ("ContainerCreating", "")
            state = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
        out: Obj = {
            "name": self.name,
            "image": self.spec.get("image") or "",
            "imageID": self.image_id,
            "ready": self.ready,
            "restartCount": max(self.restart_count, 0),
            "started": self.run is not None and self.started,
            "state": state,
            "lastState": {"terminated": self.last_terminated} if self.last_terminated else {},
        }
        if self.run is not None:
            out["containerID"] = self.run.container_id
        elif self.terminated is not None:
            out["containerID"] = self.terminated["containerID"]
        return out


def stop_all(containers: list[Container], grace_seconds: float) -> None:
    """SIGTERM every running container, SIGKILL what is left after the grace period."""
    running = [c for c in containers if c.run is not None]
    for c in running:
        c.signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline and any(c.run is not None for c in running):
        for c in running:
            c.poll()
        time.sleep(0.05)
    for c in running:
        if c.run is not None:
            c.signal(signal.SIGKILL)
            c.run.popen.wait()
            c.poll()
