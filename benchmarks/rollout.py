"""The operator on the local control plane: how long a user waits, and what the operator costs.

Starts its own local cluster (e2e/harness; or uses `--kubeconfig` of a running one), the CRD, and
`faiss-operator run` as a process, then measures:

1. apply -> Ready of a first index (IVF on 2000 x 16 vectors in a claim), split into the build Job
   (apply -> Job complete), the serving pods (-> a ready pod) and analysis (-> phase Ready);
2. verdict -> all traffic on the stable revision, for an automatic rollback (a search-parameters-only
   revision that fails live analysis: from the status write that rolls it back) and an admin rollback
   (`faiss.dev/rollback: previous` at a paused canary: from the annotation); "all traffic" = the
   Service's ready endpoints are exactly the stable's pods. Goal (issue 9): at most 2 s, since the
   stable pods are already ready;
3. once the operator has answered a warm-up FaissIndex (its watches are live: a just-started API
   server refuses its first LIST for a second or two), N FaissIndex objects (default 100) applied
   at once in a namespace without an artifacts claim
   (the operator answers each with a status and a Job it cannot run), beside the index of 1-2
   still serving: apply -> first status write, p50/p99, and the time from the last create's
   answer to the last first status; the operator's client requests by verb over the burst (from
   its own metrics, faiss_operator_api_requests_total), its CPU seconds and RSS;
4. then `--idle-seconds` (default 60; 600 for the issue's 10 idle minutes) with nothing to do while
   the operator looks at every index again every `--resync` seconds (default 10): requests per idle
   pass by verb (goal: none), CPU seconds and RSS at the end and at the peak (VmHWM).

    python benchmarks/rollout.py [--objects 100] [--idle-seconds 60] [--resync 10] [--burst-only] [--kubeconfig PATH]

`--burst-only` skips 1-2 (no serving pods, for a machine that cannot run them). `--py-spy FILE`
samples the operator's stacks over the burst into FILE (py-spy's collapsed "raw" format, one line
per stack with its count; needs `pip install py-spy` in the venv, a dev tool only).

Times are observed by polling the API server every 50 ms, so each is late by up to ~0.1 s.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import sys
import tempfile
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import numpy as np
import yaml
from kubernetes import client, config, watch
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from e2e.harness import cluster as cluster_mod  # noqa: E402
from e2e.harness import operator as operator_mod  # noqa: E402
from e2e.harness import paths  # noqa: E402
from e2e.stories import data, environment  # noqa: E402
from e2e.stories.faissindex import GROUP, PLURAL, VERSION, Index, Obj, body  # noqa: E402

POLL = 0.05
NAME = "bench"
ROLLOUT: dict[str, Any] = {"steps": [{"weight": 50}], "scaleDownDelaySeconds": 2, "progressDeadlineSeconds": 300}
IVF = {"indexType": "IVF", "config": {"nlist": 16, "nprobe": 16}}
IVF_NPROBE1 = {"indexType": "IVF", "config": {"nlist": 16, "nprobe": 1}}
IVF_NPROBE8 = {"indexType": "IVF", "config": {"nlist": 16, "nprobe": 8}}


def spec(index: dict[str, Any], *, analysis: dict[str, Any] | None = None, steps: bool = True) -> Obj:
    rollout = {**ROLLOUT, **({"analysis": analysis} if analysis else {})}
    if not steps:
        rollout["steps"] = []
    return {"dimension": data.DIMENSION, **index, "source": {"uri": environment.SOURCE_URI},
            "evaluation": {"k": 10, "queries": 100}, "serving": {"replicas": 1}, "rollout": rollout}


def until(check: Callable[[], Any], timeout: float, what: str) -> float:
    """Poll `check` every POLL seconds; the monotonic time it first held. Raises TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return time.monotonic()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached in {timeout:.0f}s")
        time.sleep(POLL)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


@dataclasses.dataclass
class Bench:
    api: client.ApiClient
    namespace: str
    index: Index

    def create(self, spec_: Obj) -> None:
        client.CustomObjectsApi(self.api).create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, body(NAME, spec_))

    def replace_spec(self, spec_: Obj) -> None:
        """The whole spec replaced, as `kubectl apply` of a new file would (a merge patch would keep
        keys the new spec leaves out, such as rollout.analysis)."""
        obj = self.index.get()
        obj["spec"] = spec_
        client.CustomObjectsApi(self.api).replace_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, NAME, obj)

    def status(self) -> Obj:
        return self.index.status()

    def only_stable_serves(self, stable: str) -> bool:
        pods = self.index.ready_pods()
        ips = {p.status.pod_ip for p in pods.get(stable, [])}
        return bool(ips) and self.index.endpoint_addresses() == ips


def first_index(bench: Bench) -> dict[str, float]:
    started = time.monotonic()
    bench.create(spec(IVF, steps=False))
    job_done = until(lambda: any(any(c.type == "Complete" and c.status == "True" for c in j.status.conditions or [])
                                 for j in bench.index.jobs("build")), 600, "the build Job Complete")
    pod_ready = until(lambda: bench.index.ready_pods(), 600, "a ready serving pod")
    ready = until(lambda: bench.status().get("phase") == "Ready", 600, "phase Ready")
    return {"build Job (apply -> Job complete)": job_done - started,
            "serving pods (-> pod ready)": pod_ready - job_done,
            "analysis (-> phase Ready)": ready - pod_ready,
            "apply -> Ready": ready - started}


def automatic_rollback(bench: Bench, stable: str) -> float:
    bench.replace_spec(spec(IVF_NPROBE1, analysis={"minRecall": 0.99}))

    def verdict() -> bool:
        status = bench.status()
        return any(r["state"] == "RolledBack" for r in status.get("revisions") or [])
    decided = until(verdict, 600, "the candidate RolledBack")
    settled = until(lambda: bench.only_stable_serves(stable), 120, "only the stable behind the Service")
    return settled - decided


def admin_rollback(bench: Bench, stable: str) -> float:
    bench.replace_spec(spec(IVF_NPROBE8))
    until(lambda: ((bench.status().get("rollout") or {}).get("paused") is True
                   and len(bench.index.ready_pods()) == 2), 300, "a paused canary beside the stable")
    asked = time.monotonic()
    bench.index.annotate("faiss.dev/rollback", "previous")
    settled = until(lambda: bench.only_stable_serves(stable), 120, "only the stable behind the Service")
    return settled - asked


@dataclasses.dataclass(frozen=True)
class Metrics:
    """The operator's own metrics endpoint."""

    port: int

    def samples(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as answer:
            text = answer.read().decode()
        return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
                for family in text_string_to_metric_families(text) for sample in family.samples}

    def requests(self) -> dict[str, float]:
        """verb -> the client's requests so far."""
        found: dict[str, float] = {}
        for (name, labels), value in self.samples().items():
            if name == "faiss_operator_api_requests_total":
                verb = dict(labels)["verb"]
                found[verb] = found.get(verb, 0.0) + value
        return found

    def passes(self) -> float:
        return self.samples().get(("faiss_operator_reconcile_duration_seconds_count", ()), 0.0)


def by_verb(before: dict[str, float], after: dict[str, float], per: float = 1.0) -> str:
    """`apply 100, patch 200` (the difference, divided by `per`), or `none`."""
    counts = {verb: (after.get(verb, 0.0) - before.get(verb, 0.0)) / per for verb in sorted(after)}
    shown = [f"{verb} {count:.6g}" for verb, count in counts.items() if count]
    return ", ".join(shown) or "none"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def many_objects(
    api: client.ApiClient, operator: operator_mod.OperatorProcess, metrics: Metrics, count: int, idle_seconds: float,
    profile: pathlib.Path | None = None,
) -> dict[str, float | str]:
    """`count` objects in a namespace without the artifacts claim: apply -> first status write,
    then `idle_seconds` with nothing to change."""
    core, objects = client.CoreV1Api(api), client.CustomObjectsApi(api)
    warm_up = operator_watching(api, metrics)
    namespace = f"bench-many-{os.getpid()}"
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    created: dict[str, float] = {}
    first_status: dict[str, float] = {}
    done = threading.Event()

    # Watching from the empty list's resourceVersion sees every later change, however late the
    # watch thread starts.
    listed = objects.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    since = listed["metadata"]["resourceVersion"]

    def seen(obj: Obj) -> None:
        # The CRD defaults status to {observedGeneration: 0}: the operator's first write is the
        # first status with observedGeneration 1 or more.
        written = ((obj.get("status") or {}).get("observedGeneration") or 0) >= 1
        if written and obj["metadata"]["name"] not in first_status:
            first_status[obj["metadata"]["name"]] = time.monotonic()

    def observe() -> None:
        # The API server may end a watch early (its own timeout, or 410 Gone under load): watch
        # again from the last version seen, or from a new list (late by the list's time) after 410.
        version, deadline = since, time.monotonic() + 600
        while len(first_status) < count and time.monotonic() < deadline:
            stream = watch.Watch()
            try:
                for event in stream.stream(objects.list_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL,
                                           resource_version=version, timeout_seconds=60):
                    version = event["object"]["metadata"]["resourceVersion"]
                    seen(event["object"])
                    if len(first_status) == count:
                        stream.stop()
            except client.exceptions.ApiException:
                listed = objects.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
                version = listed["metadata"]["resourceVersion"]
                for obj in listed["items"]:
                    seen(obj)
        done.set()
    watcher = threading.Thread(target=observe, daemon=True)
    watcher.start()
    pid = operator.pid
    assert pid is not None
    cpu_before, requests_before, burst_passes_before = cpu_seconds(pid), metrics.requests(), metrics.passes()
    sampler = None
    if profile is not None:
        sampler = subprocess.Popen([str(paths.venv_bin() / "py-spy"), "record", "--pid", str(pid), "--output", str(profile),
                                    "--format", "raw", "--rate", "100", "--nonblocking"], stdout=subprocess.DEVNULL)
    for i in range(count):
        name = f"many-{i:04d}"
        created[name] = time.monotonic()
        objects.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, {
            **body(name, spec(IVF, steps=False)), "metadata": {"name": name}})
    last_created = time.monotonic()
    done.wait(600)
    cpu = cpu_seconds(pid) - cpu_before
    latencies = [first_status[n] - created[n] for n in created if n in first_status]
    result: dict[str, float | str] = {
        "objects": float(count), "with a status": float(len(latencies)),
        "apply -> first status p50 (s)": percentile(latencies, 50),
        "apply -> first status p99 (s)": percentile(latencies, 99),
        "last create answered -> last first status (s)": max(first_status.values(), default=last_created) - last_created,
        "creates, first sent -> last answered (s)": last_created - min(created.values(), default=last_created),
        "operator CPU over the burst (s)": cpu, "operator RSS after the burst (MiB)": rss_mib(pid),
        "operator peak RSS so far (MiB)": rss_mib(pid, "VmHWM"),
    }
    # The burst's own follow-up passes (a status write wakes one more) end within seconds.
    until(lambda: settled(metrics), 120, "the burst's passes to settle")
    if sampler is not None:
        sampler.send_signal(signal.SIGINT)  # py-spy writes its file when interrupted
        sampler.wait(60)
    result["client requests over the burst, by verb"] = by_verb(requests_before, metrics.requests())
    result["passes over the burst, per object"] = (metrics.passes() - burst_passes_before) / count
    cpu_before, requests_before, passes_before = cpu_seconds(pid), metrics.requests(), metrics.passes()
    idle_started = time.monotonic()
    time.sleep(idle_seconds)  # the measurement window itself, not a wait for something to happen
    idle = time.monotonic() - idle_started
    passes = metrics.passes() - passes_before
    result[f"idle {idle:.0f} s: passes"] = passes
    result["idle: client requests per pass, by verb"] = by_verb(requests_before, metrics.requests(), max(passes, 1.0))
    result["idle: operator CPU (s per minute)"] = (cpu_seconds(pid) - cpu_before) / idle * 60
    result["idle: operator RSS at the end (MiB)"] = rss_mib(pid)
    result["idle: operator peak RSS since start (MiB)"] = rss_mib(pid, "VmHWM")
    core.delete_namespace(namespace)
    core.delete_namespace(warm_up)
    return result


def operator_watching(api: client.ApiClient, metrics: Metrics) -> str:
    """Wait until the operator has written the first status of a FaissIndex created now (in a
    namespace of its own, returned) and its follow-up writes have settled, so that the burst starts
    on live watches: a just-started API server refuses the operator's first LIST for a second or
    two ("storage is (re)initializing", retried by Kopf), and objects created meanwhile would
    wait for it (p99 2.4-3.7 s instead of 0.7-1.0 s in six 1,000-object runs). Raises TimeoutError."""
    core, objects = client.CoreV1Api(api), client.CustomObjectsApi(api)
    namespace = f"bench-warm-up-{os.getpid()}"
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    objects.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body("warm-up", spec(IVF, steps=False)))

    def answered() -> bool:
        found = objects.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "warm-up")
        return ((found.get("status") or {}).get("observedGeneration") or 0) >= 1
    until(answered, 120, "the operator's first status of a warm-up FaissIndex")
    until(lambda: settled(metrics), 120, "the warm-up index's writes to settle")
    return namespace


def settled(metrics: Metrics) -> bool:
    """No client request for a second while passes go on."""
    before, passes = metrics.requests(), metrics.passes()
    time.sleep(1.0)
    return metrics.requests() == before and metrics.passes() > passes


def responds(metrics: Metrics) -> bool:
    try:
        metrics.samples()
    except OSError:
        return False
    return True


def cpu_seconds(pid: int) -> float:
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    """The process's resident memory (VmRSS), or its peak so far (VmHWM), in MiB."""
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def apply_crd(api: client.ApiClient) -> None:
    extensions = client.ApiextensionsV1Api(api)
    crd = yaml.safe_load((paths.REPO_ROOT / "crds" / "faissindexes.faiss.dev.yaml").read_text())
    try:
        extensions.create_custom_resource_definition(crd)
    except client.exceptions.ApiException as error:
        if error.status != 409:
            raise
    until(lambda: any(c.type == "Established" and c.status == "True" for c in
                      extensions.read_custom_resource_definition(crd["metadata"]["name"]).status.conditions or []),
          60, "the CRD Established")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=100, help="FaissIndex objects for the burst (default 100)")
    parser.add_argument("--idle-seconds", "--idle", dest="idle", type=float, default=60.0,
                        help="seconds of the idle window after the burst (default 60; the issue's goal is for 600)")
    parser.add_argument("--resync", type=float, default=10.0, help="the operator's --resync in seconds (default 10)")
    parser.add_argument("--burst-only", action="store_true", help="skip the serving index and the rollbacks")
    parser.add_argument("--kubeconfig", type=pathlib.Path, help="a running cluster (default: start one)")
    parser.add_argument("--py-spy", dest="py_spy", type=pathlib.Path, metavar="FILE",
                        help="sample the operator's stacks over the burst into FILE (py-spy raw format)")
    args = parser.parse_args(argv)

    workdir = pathlib.Path(tempfile.mkdtemp(prefix="rollout-bench-"))
    own_cluster = None
    kubeconfig = args.kubeconfig
    if kubeconfig is None:
        own_cluster = cluster_mod.Cluster(workdir / "cluster")
        own_cluster.up(timeout=180)
        kubeconfig = own_cluster.kubeconfig
    operator: operator_mod.OperatorProcess | None = None
    try:
        api = config.new_client_from_config(config_file=str(kubeconfig))
        apply_crd(api)
        story = environment.create(api, "bench")
        metrics = Metrics(free_port())
        operator = operator_mod.OperatorProcess(
            kubeconfig, workdir / "operator.log", args=["--metrics-port", str(metrics.port), "--resync", f"{args.resync:g}"]
        )
        operator.start()
        until(lambda: responds(metrics), 60, "the operator's metrics")
        bench = Bench(api, story.name, Index(api, story.name, NAME))

        rows: list[tuple[str, str]] = []
        if not args.burst_only:
            for what, seconds in first_index(bench).items():
                rows.append((what, f"{seconds:.2f} s"))
            stable = bench.status()["currentRevision"]
            rows.append(("automatic rollback: verdict -> all traffic on stable", f"{automatic_rollback(bench, stable):.2f} s"))
            # The failed revision stays asked for by the spec; a new spec moves on.
            rows.append(("admin rollback: annotation -> all traffic on stable", f"{admin_rollback(bench, stable):.2f} s"))
        for what, value in many_objects(api, operator, metrics, args.objects, args.idle, args.py_spy).items():
            rows.append((what, value if isinstance(value, str) else
                         f"{value:.2f}" if not float(value).is_integer() else f"{int(value)}"))
        width = max(len(r[0]) for r in rows)
        print(f"| {'measurement'.ljust(width)} | value |")
        print(f"|{'-' * (width + 2)}|-------|")
        for what, value in rows:
            print(f"| {what.ljust(width)} | {value} |")
        print(f"operator log: {operator.log}", file=sys.stderr)
        return 0
    finally:
        if operator is not None:
            operator.stop()
        if own_cluster is not None:
            own_cluster.down()


if __name__ == "__main__":
    sys.exit(main())
