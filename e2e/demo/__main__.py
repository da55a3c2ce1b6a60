"""`python -m e2e.demo [up|down]`: the seed guide's migration on a local cluster, with real embeddings.

up: start the local control plane (reused when it runs), install the chart (the operator runs as
its pod), embed WordNet glosses with all-MiniLM-L6-v2 (cached), load them into a claim with the
loader Job, then IVF -> HNSW (canary) -> OPQ+HNSW -> rollback to IVF, and the comparison table.
Exit 0 when every step passed, 1 with the failed step, its reason and the operator's log tail.
down: remove what up made (the FaissIndex, the chart, the namespace) and stop the cluster.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from e2e.demo import capture, embeddings, loader, migration, minilm, report, search
from e2e.demo.progress import PhaseFailed, Progress, fail
from e2e.harness import addresses
from e2e.harness import cluster as cluster_mod
from e2e.harness import paths
from e2e.harness.kubectl import Kubectl
from e2e.harness.waiting import wait_for
from e2e.stories import chart

RELEASE, SYSTEM = "faiss-operator", "faiss-system"
DIMENSION = 384
LOG_TAIL_LINES = 40


def chart_values(settings: migration.Settings) -> dict[str, object]:
    return chart.local_values(
        watch_namespaces=[settings.namespace], analysis_interval=2,
        artifacts={"create": True, "namespaces": [settings.namespace], "accessModes": ["ReadWriteOnce"],
                   "size": "5Gi"})


class Demo:
    def __init__(self, args: argparse.Namespace) -> None:
        self.progress = Progress()
        self.cluster = cluster_mod.Cluster(args.state_dir)
        self.settings = migration.Settings(replicas=args.replicas, pause_seconds=args.pause_seconds,
                                           max_p99_ms=args.max_p99_ms)
        self.count = args.count
        self.release = chart.Release(RELEASE, SYSTEM, self.cluster.kubeconfig)
        self.capture_dir: pathlib.Path | None = args.capture_dir

    @property
    def api(self) -> client.ApiClient:
        return self.cluster.api_client()

    @property
    def kubectl(self) -> Kubectl:
        return Kubectl(self.cluster.kubeconfig, binary=self.cluster.bin_dir / "kubectl")

    def cluster_running(self) -> bool:
        return self.cluster.kubeconfig.exists() and all(s.startswith("running") for s in self.cluster.status().values())

    def operator_log(self) -> str:
        try:
            pod = self.release.operator_pod(self.api)
            if pod is None:
                return "(no operator pod)"
            lines = self.cluster.container_log(SYSTEM, pod.metadata.name, "operator").splitlines()
            return "\n".join(lines[-LOG_TAIL_LINES:])
        except Exception as error:  # noqa: BLE001 - the log is best effort after a failure
            return f"(operator log unavailable: {error})"

    def operator_alive(self) -> None:
        pod = self.release.operator_pod(self.api)
        restarts = sum(c.restart_count for c in (pod.status.container_statuses or [])) if pod else 0
        if pod is None or restarts:
            raise AssertionError("the operator pod restarted or is gone")

    # -- the phases ------------------------------------------------------------------------------
    def up(self) -> None:
        p = self.progress
        with p.phase("control plane"):
            if self.cluster_running():
                p.say(f"reusing the running cluster ({self.cluster.kubeconfig})")
            else:
                self.cluster.up(timeout=180, progress=lambda m: p.say(f"   {m}"))
        with p.phase("leftovers of an earlier demo"):
            self.remove_story()
        with p.phase("chart"):
            self.kubectl.apply({"apiVersion": "v1", "kind": "Namespace",
                                "metadata": {"name": self.settings.namespace}})
            wait_for(lambda: client.CoreV1Api(self.api).read_namespaced_service_account(
                "default", self.settings.namespace), 30, "service account default")
            p.say(f"$ helm install {RELEASE} charts/faiss-operator -n {SYSTEM} --create-namespace "
                  f"--set image.repository=faiss-operator,image.tag=dev "
                  f"--set 'watchNamespaces={{{self.settings.namespace}}}' --set artifacts.create=true ... --wait")
            chart.install(self.release, chart_values(self.settings))
            p.show(self.kubectl.run("get", "deployment,pods", "-n", SYSTEM).stdout)
        with p.phase("embeddings"):
            vectors, texts = embeddings.embed(self.count, p.say)
            encoder = minilm.MiniLM(embeddings.model_dir())
        with p.phase("loader Job"):
            p.say("$ kubectl apply -f examples/storage/embeddings-pvc.yaml -f examples/storage/embeddings-loader-job.yaml")
            block = self.cluster.address_block
            if block is None:
                raise AssertionError("the cluster has no address block (is it running?)")
            p.show(loader.load(self.api, self.kubectl, self.settings.namespace, vectors, DIMENSION,
                               serve_on=addresses.host_address(block)))
        story = migration.Story(self.api, self.kubectl, p, self.settings, self.operator_alive)
        if self.capture_dir is not None:
            story.observe = capture.Capture(self.capture_dir)
        with p.phase("1. IVF, the v0.8 default"):
            story.step_to("IVF", "IVF first deploy")
            self.show_answer(story, encoder, texts)
        with p.phase("2. IVF -> HNSW by canary"):
            story.step_to("HNSW", "IVF -> HNSW")
        with p.phase("3. HNSW -> OPQ+HNSW for memory"):
            story.step_to("OPQ+HNSW", "HNSW -> OPQ+HNSW")
        with p.phase("4. rollback to IVF"):
            before = story.build_jobs()
            obj = story.rollback_to("IVF", "rollback to IVF")
            p.say(f"IVF serves again; phase {obj['status']['phase']}: "
                  f"{_condition_message(obj, 'Stalled')} -- so the spec is reverted, as a GitOps revert would:")
            obj = story.revert_spec("IVF", "spec reverted to IVF")
            after = story.build_jobs()
            if before != after:
                raise AssertionError(f"the rollback made build Jobs: before {before}, after {after}")
            p.say(f"no rebuild: the build Jobs are the same before and after ({len(after)}: {', '.join(after)})")
            self.show_answer(story, encoder, texts)
        p.say("== the comparison, measured in this run (each revision's build Job, on these embeddings)")
        p.show(report.comparison(obj["status"], story.revisions))
        p.show("")
        p.show(report.transitions(story.transitions))
        total = sum(p.durations.values())
        p.say(f"demo passed in {total:.0f}s. The cluster keeps running: "
              f"export KUBECONFIG={self.cluster.kubeconfig}; kubectl get faissindex -n {self.settings.namespace}. "
              f"`make demo-down` removes it.")

    def show_answer(self, story: migration.Story, encoder: minilm.MiniLM, texts: list[str]) -> None:
        revision, found = wait_for(lambda: _try_ask(story, encoder, texts), 60, "an answer from the Service")
        self.progress.say(f"$ search {search.QUESTION!r} (through Service {migration.NAME}; "
                          f"answered by revision {revision}):")
        self.progress.show("\n".join(f"- {text}" for text in found))

    def remove_story(self) -> None:
        """The FaissIndex (while the operator still runs to remove its finalizer), the chart, the namespace."""
        if not self.cluster_running():
            return
        namespace = self.settings.namespace
        self.kubectl.run("delete", "faissindex", migration.NAME, "-n", namespace, "--ignore-not-found",
                         "--wait=true", "--timeout=120s", check=False)
        chart.uninstall(self.release)
        self.kubectl.run("delete", "namespace", namespace, "--ignore-not-found", "--wait=true", "--timeout=120s")

    def down(self) -> None:
        with self.progress.phase("remove the demo"):
            self.remove_story()
        with self.progress.phase("stop the cluster"):
            self.cluster.down()


def _condition_message(obj: dict[str, object], type_: str) -> str:
    from e2e.stories.faissindex import condition
    found = condition(obj, type_)
    return f"{type_}={found.get('status')} {found.get('reason')}: {found.get('message')}" if found else f"no {type_}"


def _try_ask(story: migration.Story, encoder: minilm.MiniLM, texts: list[str]) -> tuple[str | None, list[str]] | None:
    try:
        return search.ask(story.index, encoder, texts)
    except (OSError, ApiException):
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", default="up", choices=("up", "down"))
    parser.add_argument("--state-dir", type=pathlib.Path, default=paths.DEFAULT_STATE_DIR)
    parser.add_argument("--count", type=int, default=20000, help="WordNet texts to embed (default 20000)")
    parser.add_argument("--replicas", type=int, default=migration.Settings.replicas)
    parser.add_argument("--pause-seconds", type=int, default=migration.Settings.pause_seconds)
    parser.add_argument("--max-p99-ms", type=float, default=migration.Settings.max_p99_ms)
    parser.add_argument("--capture-dir", type=pathlib.Path, default=None,
                        help="keep the FaissIndex at each new state here (tests/gitops/captured_samples.py)")
    args = parser.parse_args(argv)
    demo = Demo(args)
    problem = paths.build_problem()
    if problem:
        fail(f"demo: the control plane is not built: {problem}")
        return 1
    try:
        demo.up() if args.command == "up" else demo.down()
    except PhaseFailed as error:
        fail(f"\ndemo FAILED in phase {error.phase!r}: {error}")
        if args.command == "up":
            fail(f"--- the operator's log, last {LOG_TAIL_LINES} lines ---\n{demo.operator_log()}")
            fail("the cluster is left running for a look (KUBECONFIG="
                 f"{demo.cluster.kubeconfig}); `make demo-down` removes it")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
