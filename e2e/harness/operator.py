"""`faiss-operator run` started by a test, as a user runs it: a kubeconfig in KUBECONFIG.

By default it runs from the image `faiss-operator:dev` under runc, as the chart's pod would
(e2e/harness/operator_image.py); with FAISS_E2E_OPERATOR_RUNTIME=process it is the repository's
`faiss-operator` program, a process of the host (faster to iterate on: no `make image` after an
edit). Either way it runs on the host (not in the cluster's network namespace): it reaches the API server
at the node address from the kubeconfig and the serving pods (for live analysis) by pod IP through
the host's route to the cluster (e2e/harness/addresses.py). Its output goes to one log file that
keeps every run (a restart appends), so a test can print it on failure and look for the lines
the operator writes for each action.
"""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence

from e2e.harness import operator_image, paths, processes
from e2e.harness.kubelet import images, ocispec

DEFAULT_IMAGE = "faiss-operator:dev"
RUNTIME_ENV = "FAISS_E2E_OPERATOR_RUNTIME"
RUNC, PROCESS = "runc", "process"


def default_runtime() -> str:
    """runc unless FAISS_E2E_OPERATOR_RUNTIME says process; anything else is refused."""
    runtime = os.environ.get(RUNTIME_ENV) or RUNC
    if runtime not in (RUNC, PROCESS):
        raise OperatorError(f"{RUNTIME_ENV}={runtime!r}: expected {RUNC!r} (the default) or {PROCESS!r}")
    return runtime


class OperatorError(RuntimeError):
    """The operator process could not be started or exited on its own; the message has its log's tail."""


class OperatorProcess:
    """One operator watching `namespaces` of the cluster behind `kubeconfig`; start, kill, restart.

    `args` are extra flags of `faiss-operator run`; `env` is added to this process's environment
    (FAISS_OPERATOR_IMAGE defaults to `faiss-operator:dev`, the image `make image` builds);
    `runtime` is runc (from that image) or process (default: FAISS_E2E_OPERATOR_RUNTIME, else runc).
    """

    def __init__(
        self,
        kubeconfig: pathlib.Path,
        log: pathlib.Path,
        *,
        namespaces: Sequence[str] = (),
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        program: pathlib.Path | None = None,
        runtime: str | None = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.log = log
        self.namespaces = tuple(namespaces)
        self.args = tuple(args)
        self.env = dict(env or {})
        self.program = program or paths.venv_bin() / "faiss-operator"
        self.runtime = runtime or default_runtime()
        self.runs = 0
        self._image_run: operator_image.ImageRun | None = None
        self._popen: subprocess.Popen[bytes] | None = None
        self._record: processes.Record | None = None

    @property
    def argv(self) -> list[str]:
        ns_flags = [flag for ns in self.namespaces for flag in ("--namespace", ns)]
        return [str(self.program), "run", *ns_flags, *self.args]

    def start(self) -> None:
        """Start a new run; raises OperatorError if one is running or it exits at once."""
        if self.alive():
            raise OperatorError(f"operator already running (pid {self.pid})")
        own = {"FAISS_OPERATOR_IMAGE": DEFAULT_IMAGE, "PYTHONUNBUFFERED": "1", **self.env}
        self.runs += 1
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("a") as out:
            command = ["faiss-operator", *self.argv[1:]] if self.runtime == RUNC else self.argv
            out.write(f"\n===== run {self.runs}: ({self.runtime}) {' '.join(command)} =====\n")
        if self.runtime == RUNC:
            try:
                self._image_run = operator_image.start(
                    image=DEFAULT_IMAGE, args=self.argv[1:], env=own, kubeconfig=self.kubeconfig,
                    run_dir=self.log.parent / "image-run", log=self.log)
            except (images.ImageNotPresent, ocispec.ConfigError) as error:
                raise OperatorError(f"cannot run the operator from its image: {error} (`make image` builds it)") from error
            return
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), **own}
        self._popen, self._record = processes.spawn("faiss-operator", self.argv, log=self.log, env=env)

    @property
    def pid(self) -> int | None:
        if self._image_run is not None:
            return self._image_run.pid
        return self._record.pid if self._record else None

    def alive(self) -> bool:
        if self._image_run is not None:
            return self._image_run.alive()
        if self._popen is not None:
            self._popen.poll()  # reap an exited child so it does not linger as a zombie
        return self._record is not None and processes.alive(self._record)

    def exit_code(self) -> int | None:
        if self._image_run is not None:
            return self._image_run.exit_code()
        return self._popen.poll() if self._popen is not None else None

    def kill(self) -> None:
        """SIGKILL, as a node failure or an OOM kill would: no cleanup of any kind runs."""
        if (self._record is None and self._image_run is None) or not self.alive():
            raise OperatorError(f"operator is not running (exit code {self.exit_code()}); log:\n{self.tail()}")
        if self._image_run is not None:
            self._image_run.kill()
            return
        assert self._record is not None
        os.kill(self._record.pid, signal.SIGKILL)
        assert self._popen is not None
        self._popen.wait(timeout=10)

    def stop(self, grace_seconds: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after the grace period; a no-op when it is not running."""
        if self._image_run is not None:
            self._image_run.stop(grace_seconds)
            return
        if self._record is not None:
            processes.stop(self._record, grace_seconds=grace_seconds)
        if self._popen is not None:
            try:
                self._popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    def restart(self) -> None:
        if self.alive():
            self.stop()
        self.start()

    def text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def current_run_text(self) -> str:
        """The log of the latest run only."""
        marker = f"===== run {self.runs}:"
        whole = self.text()
        return whole[whole.rfind(marker):] if marker in whole else whole

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.text().splitlines()[-lines:])

    def wait_for_log(self, text: str, timeout: float) -> None:
        """Wait until the current run's log contains `text`; raises OperatorError if it exits first."""
        deadline = time.monotonic() + timeout
        while text not in self.current_run_text():
            if not self.alive():
                raise OperatorError(f"operator exited (code {self.exit_code()}) before logging {text!r}:\n"
                                    f"{self.tail()}")
            if time.monotonic() > deadline:
                raise OperatorError(f"operator did not log {text!r} within {timeout:.0f}s:\n{self.tail()}")
            time.sleep(0.2)

    def check_running(self) -> None:
        """Raise OperatorError with the log's tail when the operator has exited."""
        if not self.alive():
            raise OperatorError(f"operator exited (code {self.exit_code()}):\n{self.tail()}")
