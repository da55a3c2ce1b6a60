"""The seed guide's story on one FaissIndex, from examples/migration, watched as a user watches it.

Each step applies an example file (adapted to the local cluster, see `adapt`) or an annotation,
then prints a `kubectl get faissindex` row whenever the phase, the revisions or the weight change,
until the index is Ready on the new revision with no candidate.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable
from typing import Any

import yaml
from kubernetes import client

from e2e.demo.progress import Progress
from e2e.harness import paths
from e2e.harness.kubectl import Kubectl
from e2e.stories.faissindex import Index, Obj

EXAMPLES = paths.REPO_ROOT / "examples" / "migration"
FILES = {"IVF": "01-ivf.yaml", "HNSW": "02-hnsw.yaml", "OPQ+HNSW": "03-opq-hnsw.yaml"}
NAME = "alerts"


@dataclasses.dataclass(frozen=True)
class Settings:
    """What the demo changes in the example files, and why (README "make demo").

    pause_seconds: each step's pause (the examples' 120 s is for production traffic).
    max_p99_ms: the latency gate (the examples' 2 ms is for a dedicated node; this machine's two
    cores are shared by the control plane, the builds and every serving pod).
    min_recall: one recall gate for every step. The v0.8 IVF setup (nlist 100, nprobe 10)
    measures recall@10 0.855 (2,000) to 0.894 (20,000 vectors) on these embeddings, below the example's former 0.9 (a first run Failed on
    it); and `faiss.dev/rollback` only goes to a revision that meets today's gates, so with the
    OPQ+HNSW example's 0.93 the rollback to IVF is refused (RollbackRefused Event, seen in a run).
    """

    namespace: str = "search"
    source_uri: str = "pvc://embeddings/alerts/v1.npy"
    replicas: int = 4
    pause_seconds: int = 10
    max_p99_ms: float = 25.0
    max_latency_ratio: float = 5.0
    # The live analysis times a search over HTTP from the operator's pod: on this shared machine
    # its p99 reaches tens of ms (a first run rolled OPQ+HNSW back at 50 ms > 25 ms).
    max_live_p99_ms: float = 250.0
    min_recall: float = 0.8
    timeout_seconds: float = 600.0


def adapt(manifest: Obj, settings: Settings) -> Obj:
    """The example with the namespace, source, replicas, shorter pauses and the latency gates of
    `settings`; steps without pauseSeconds (waiting for an admin) stay so."""
    out = copy.deepcopy(manifest)
    out["metadata"]["namespace"] = settings.namespace
    spec = out["spec"]
    spec["source"]["uri"] = settings.source_uri
    spec["serving"]["replicas"] = settings.replicas
    spec["evaluation"]["maxP99LatencyMs"] = settings.max_p99_ms
    spec["evaluation"]["minRecall"] = settings.min_recall
    rollout = spec.setdefault("rollout", {})
    for step in rollout.get("steps") or []:
        if "pauseSeconds" in step:
            step["pauseSeconds"] = settings.pause_seconds
    analysis = rollout.setdefault("analysis", {})
    analysis["maxLatencyRatio"] = settings.max_latency_ratio
    analysis["maxP99LatencyMs"] = settings.max_live_p99_ms
    rollout["scaleDownDelaySeconds"] = settings.pause_seconds
    return out


def example(index_type: str, settings: Settings) -> Obj:
    document: Obj = yaml.safe_load((EXAMPLES / FILES[index_type]).read_text())
    return adapt(document, settings)


@dataclasses.dataclass
class Story:
    api: client.ApiClient
    kubectl: Kubectl
    progress: Progress
    settings: Settings
    alive: Callable[[], None]
    # Seconds each transition took, from the user's action to Ready on the new revision.
    transitions: dict[str, float] = dataclasses.field(default_factory=dict)
    revisions: dict[str, str] = dataclasses.field(default_factory=dict)  # index type -> revision
    # Called with the resource at every visible change (e2e/demo/capture.py keeps them).
    observe: Callable[[Obj], None] = lambda _: None
    _header_shown: bool = False

    @property
    def index(self) -> Index:
        return Index(self.api, self.settings.namespace, NAME)

    def get_row(self) -> str:
        """`kubectl get faissindex alerts` as printed, its columns padded to fixed widths so the rows
        of successive calls line up as in `kubectl get -w`; the header only the first time."""
        header, *rows = self.kubectl.run("get", "faissindex", NAME, "-n", self.settings.namespace).stdout.splitlines()
        lines = [_aligned(header, header)] + [_aligned(header, row) for row in rows]
        shown = lines if not self._header_shown else lines[1:]
        self._header_shown = True
        return "\n".join(shown)

    def apply(self, index_type: str) -> None:
        self.progress.say(f"$ kubectl apply -f examples/migration/{FILES[index_type]}   "
                          f"(adapted: namespace {self.settings.namespace}, pauses {self.settings.pause_seconds}s, "
                          f"gates recall {self.settings.min_recall} p99 {self.settings.max_p99_ms} ms, "
                          f"{self.settings.replicas} replicas)")
        self.kubectl.apply(example(index_type, self.settings))

    def annotate(self, key: str, value: str) -> None:
        self.progress.say(f"$ kubectl annotate faissindex {NAME} {key}={value}")
        self.kubectl.run("annotate", "faissindex", NAME, "-n", self.settings.namespace, f"{key}={value}",
                         "--overwrite")

    def refusals(self, since: float) -> list[str]:
        """Warning Events of the index after `since` (epoch seconds) whose reason ends in Refused."""
        events = client.CoreV1Api(self.api).list_namespaced_event(
            self.settings.namespace, field_selector=f"involvedObject.name={NAME},type=Warning").items
        return [f"{e.reason}: {e.message}" for e in events
                if (e.reason or "").endswith("Refused")
                and (e.last_timestamp or e.event_time or e.metadata.creation_timestamp).timestamp() >= since - 1]

    def watch_until(self, done: Callable[[Obj], bool], what: str,
                    on_change: Callable[[Obj], None] = lambda _: None, *, stalled_ok: bool = False) -> Obj:
        """Print a row at every visible change until `done(resource)`; AssertionError (with the last
        status) after settings.timeout_seconds, or at once if the index fails (phase Failed, Stalled
        unless `stalled_ok`, or a Warning Event refusing an admin action)."""
        deadline = time.monotonic() + self.settings.timeout_seconds
        since = time.time()
        last: tuple[Any, ...] | None = None
        while True:
            self.alive()
            obj = self.index.get()
            status = obj.get("status") or {}
            rollout = status.get("rollout") or {}
            seen = (status.get("phase"), status.get("currentRevision"), status.get("candidateRevision"),
                    rollout.get("step"), rollout.get("weight"), rollout.get("actualWeight"), rollout.get("paused"))
            if seen != last:
                last = seen
                self.progress.show(self.get_row() + _rollout_note(status))
                self.observe(obj)
                on_change(obj)
            if done(obj):
                return obj
            stalled = next((c for c in status.get("conditions") or [] if c.get("type") == "Stalled"), None)
            if status.get("phase") == "Failed" or (not stalled_ok and stalled and stalled.get("status") == "True"
                                                   and status.get("observedGeneration") == obj["metadata"]["generation"]):
                raise AssertionError(f"{what}: the index is {status.get('phase')}: {_conditions(obj)}")
            refused = self.refusals(since)
            if refused:
                raise AssertionError(f"{what}: the operator refused: {'; '.join(refused)}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {self.settings.timeout_seconds:.0f}s; "
                                     f"last status: {_conditions(obj)}")
            time.sleep(1.0)

    def ready_on_new_revision(self, before: str | None) -> Callable[[Obj], bool]:
        def check(obj: Obj) -> bool:
            status = obj.get("status") or {}
            return (status.get("phase") == "Ready" and not status.get("candidateRevision")
                    and status.get("observedGeneration") == obj["metadata"]["generation"]
                    and status.get("currentRevision") not in (None, before))
        return check

    def build_jobs(self) -> list[str]:
        return self.index.build_jobs()

    def step_to(self, index_type: str, title: str) -> Obj:
        """Apply the example of `index_type` and follow it to Ready; promotes a step waiting for an admin."""
        before = (self.index.status().get("currentRevision") if self.index.exists() else None)
        started = time.monotonic()
        self.apply(index_type)
        promoted: set[int] = set()

        def admin(obj: Obj) -> None:
            rollout = (obj.get("status") or {}).get("rollout") or {}
            if rollout.get("pauseReason") == "AwaitingPromotion" and rollout.get("step") not in promoted:
                promoted.add(rollout.get("step"))
                self.progress.say(f"step {int(rollout.get('step') or 0) + 1} waits for an admin (no pauseSeconds):")
                self.annotate("faiss.dev/promote", "true")
        obj = self.watch_until(self.ready_on_new_revision(before), title, admin)
        self.transitions[title] = time.monotonic() - started
        self.revisions[index_type] = obj["status"]["currentRevision"]
        return obj

    def rollback_to(self, index_type: str, title: str) -> Obj:
        """Annotate faiss.dev/rollback=<the revision of `index_type`> and follow it until that revision
        serves all replicas (Ready True, no rollout). The spec still names the newer revision, so the
        operator then reports Stalled (phase Degraded) until the spec is reverted (`revert_spec`)."""
        target = self.revisions[index_type]
        started = time.monotonic()
        self.annotate("faiss.dev/rollback", target)

        def back(obj: Obj) -> bool:
            status = obj.get("status") or {}
            ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
            return (status.get("currentRevision") == target and not status.get("candidateRevision")
                    and not status.get("rollout") and ready.get("status") == "True")
        obj = self.watch_until(back, title, stalled_ok=True)
        self.transitions[title] = time.monotonic() - started
        return obj

    def revert_spec(self, index_type: str, title: str) -> Obj:
        """`kubectl apply` the example of `index_type` again (the GitOps revert) and wait for Ready on
        the revision already serving."""
        target = self.revisions[index_type]
        started = time.monotonic()
        self.apply(index_type)

        def ready(obj: Obj) -> bool:
            status = obj.get("status") or {}
            return (status.get("phase") == "Ready" and status.get("currentRevision") == target
                    and status.get("observedGeneration") == obj["metadata"]["generation"])
        obj = self.watch_until(ready, title)
        self.transitions[title] = time.monotonic() - started
        return obj


# Column widths wide enough for every value the demo shows (OPQ+HNSW, RollingBack, 10-char revisions).
COLUMN_WIDTHS = {"NAME": 8, "TYPE": 10, "PHASE": 13, "REVISION": 12, "RECALL": 8, "P99(MS)": 9, "WEIGHT": 8}


def _aligned(header: str, row: str) -> str:
    """`row` of kubectl's table re-padded: each cell is the slice under its header word."""
    starts = [i for i, ch in enumerate(header) if ch != " " and (i == 0 or header[i - 1] == " ")]
    cells = [row[a:b].strip() for a, b in zip(starts, starts[1:] + [None])]
    names = header.split()
    return "".join(cell.ljust(COLUMN_WIDTHS.get(name, 0)) + " " for name, cell in zip(names, cells)).rstrip()


def _rollout_note(status: Obj) -> str:
    rollout = status.get("rollout") or {}
    if not rollout:
        return ""
    note = f"   <- {rollout.get('mode')} step {int(rollout.get('step') or 0) + 1}: weight {rollout.get('weight')}%"
    if rollout.get("actualWeight") is not None:
        note += f" asked, {rollout.get('actualWeight')}% of ready replicas"
    if rollout.get("paused"):
        note += f", paused ({rollout.get('pauseReason')})"
    return note


def _conditions(obj: Obj) -> str:
    from e2e.stories.faissindex import describe_status
    return describe_status(obj)
