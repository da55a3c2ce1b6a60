"""Build memory and time: `faiss-operator build` (the real CLI) beside raw FAISS, same data, same run.

Synthetic normalised float32 vectors (n x 384, clustered) are generated once, chunk by chunk,
into a .npy under ~/.cache/faiss-operator/bench (never held whole). For each index type, with
the project's config defaults, two subprocesses build from that memory map:

* `faiss-operator build --metric InnerProduct` (validation, training, chunked adds, chunked
  exact ground truth, the latency measurement, the checksummed artifact);
* benchmarks/_rawbuild.py: FAISS alone, training on the same number of rows and adding the
  whole memory map in one call, then `write_index`.

While each runs, this process samples its RssAnon (/proc/<pid>/status) every 20 ms: the memory
a cgroup cannot reclaim (the memory map's page cache does not count). Columns: index bytes (the
saved index.faiss), peak anonymous memory of each, the project's peak over index bytes + 512
MiB (goal <= 1), train+add seconds of each and their ratio (goal <= 1.1), and the project's whole
wall time. The builder's own report (peak_anon_bytes) is shown beside the sampled peak.

    python benchmarks/build_memory.py                                  # 1M x 384: IVF, HNSW, OPQ+HNSW
    python benchmarks/build_memory.py --vectors 200000 --types OPQ+HNSW
    python benchmarks/build_memory.py --results results.jsonl --table-only   # print a table again
    python benchmarks/build_memory.py --vectors 10000000 --types OPQ+HNSW --without-raw   # does it complete?

`--without-raw` runs the project's build alone (all threads unless --threads): for a size where
the question is whether the build completes and what it holds, not its ratio to raw FAISS; the
raw columns then show "-".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))

from faiss_operator.index import config as index_config, factory  # noqa: E402

CACHE = Path.home() / ".cache" / "faiss-operator" / "bench"
DIMENSION = 384
GENERATE_CHUNK = 100_000
SEED = 20261207
MIB = 1 << 20
HEADROOM = 512 * MIB
ROOT = Path(__file__).resolve().parents[1]
CLI = ROOT / ".venv" / "bin" / "faiss-operator"


def synthetic(n: int, dimension: int = DIMENSION) -> Path:
    """n x dimension normalised float32 around 1,000 centres, written chunk by chunk, cached."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"normalized-{n}x{dimension}-{SEED}.npy"
    if path.exists():
        return path
    partial = path.with_suffix(".partial.npy")
    centres = np.random.default_rng(SEED).standard_normal((1000, dimension)).astype(np.float32)
    out = np.lib.format.open_memmap(partial, mode="w+", dtype=np.float32, shape=(n, dimension))
    for number, start in enumerate(range(0, n, GENERATE_CHUNK)):
        rows = min(GENERATE_CHUNK, n - start)
        rng = np.random.default_rng([SEED, number])
        chunk = centres[rng.integers(0, len(centres), rows)] + 0.6 * rng.standard_normal((rows, dimension)).astype(np.float32)
        out[start : start + rows] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
    out.flush()
    del out
    partial.rename(path)
    return path


class AnonSampler:
    """The highest RssAnon of process `pid`, sampled until it exits."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.peak = 0
        self._status = Path(f"/proc/{pid}/status")
        self._interval = interval
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.is_set():
            try:
                for line in self._status.read_text().splitlines():
                    if line.startswith("RssAnon:"):
                        self.peak = max(self.peak, int(line.split()[1]) * 1024)
            except OSError:
                return
            time.sleep(self._interval)

    def stop(self) -> int:
        self._done.set()
        self._thread.join()
        return self.peak


def run_sampled(argv: list[str], env: dict[str, str], log: Path) -> tuple[str, int, float]:
    """(stdout, peak RssAnon, wall seconds) of `argv`; its stderr (the progress lines) goes to `log`."""
    started = time.perf_counter()
    with log.open("w") as errors:
        process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=errors, text=True)
        sampler = AnonSampler(process.pid)
        stdout, _ = process.communicate()
    wall = time.perf_counter() - started
    peak = sampler.stop()
    if process.returncode != 0:
        raise RuntimeError(f"{argv[:3]} failed ({process.returncode}): see {log}")
    return stdout, peak, wall


def raw_arguments(index_type: str, n: int) -> list[str]:
    """What the project builds for `index_type` with its defaults, as _rawbuild.py flags."""
    config = index_config.parse_config(index_type, {})
    plan = factory.plan_build(config, dimension=DIMENSION, num_vectors=n)
    flags = ["--factory", plan.factory]
    ef = getattr(config, "ef_construction", None)
    if ef is not None:
        flags += ["--ef-construction", str(ef)]
    if plan.needs_training:
        flags += ["--train-size", str(plan.training_vectors)]
    return flags


def measure(
    index_type: str, n: int, source: Path, work: Path, env: dict[str, str], *, concurrent: bool, with_raw: bool = True
) -> dict[str, Any]:
    out = work / f"{index_type}-{n}"
    log = work / f"{index_type}-{n}.termination-log"
    logs = CACHE / "logs"
    logs.mkdir(exist_ok=True)
    raw_file = work / f"{index_type}-{n}.raw.faiss"
    ours_argv = [str(CLI), "build", "--source", str(source), "--out", str(out), "--index-type", index_type,
                 "--metric", "InnerProduct", "--overwrite", "--termination-log", str(log)]
    raw_argv = [sys.executable, str(ROOT / "benchmarks" / "_rawbuild.py"), str(source), str(raw_file),
                *raw_arguments(index_type, n)]
    runs: dict[str, tuple[str, int, float]] = {}

    def run(name: str, argv: list[str]) -> None:
        runs[name] = run_sampled(argv, env, logs / f"{index_type}-{n}.{name}.log")

    if not with_raw:
        run("build", ours_argv)
    elif concurrent:
        # Side by side, so that both see the same load on a shared machine (use --threads 1).
        threads = [threading.Thread(target=run, args=(name, argv)) for name, argv in
                   (("build", ours_argv), ("raw", raw_argv))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if set(runs) != {"build", "raw"}:
            raise RuntimeError(f"a build failed: see {logs}")
    else:
        run("build", ours_argv)
        run("raw", raw_argv)
    _, ours_peak, ours_wall = runs["build"]
    report = json.loads((out / "report.json").read_text())
    result = {
        "index_type": index_type, "vectors": n, "dimension": DIMENSION, "index_bytes": int(report["memory_bytes"]),
        "peak_anon": ours_peak, "reported_peak_anon": report.get("peak_anon_bytes"),
        "build_seconds": report["build_seconds"], "wall_seconds": ours_wall, "recall": report["recall"],
        "raw_index_bytes": None, "raw_peak_anon": None, "raw_build_seconds": None, "raw_wall_seconds": None,
        "load": os.getloadavg()[0], "threads": env.get("OMP_NUM_THREADS", "all"), "concurrent": concurrent,
    }
    if "raw" in runs:
        raw, raw_peak, raw_wall = runs["raw"]
        raw_times = json.loads(raw.strip().splitlines()[-1])
        result.update(
            raw_index_bytes=raw_file.stat().st_size, raw_peak_anon=raw_peak, raw_wall_seconds=raw_wall,
            raw_build_seconds=raw_times["train_seconds"] + raw_times["add_seconds"],
        )
        raw_file.unlink(missing_ok=True)
    return result


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| type | vectors | index MiB | peak anon MiB (report) | raw FAISS peak MiB | peak / (index + 512 MiB) "
        "| train+add s | raw FAISS s | ratio | whole build s | recall@10 | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        reported = r["reported_peak_anon"]
        raw_peak, raw_seconds = r["raw_peak_anon"], r["raw_build_seconds"]
        raw_peak_cell = f"{raw_peak / MIB:,.0f}" if raw_peak else "-"
        raw_seconds_cell = f"{raw_seconds:,.0f}" if raw_seconds else "-"
        ratio_cell = f"{r['build_seconds'] / raw_seconds:.2f}" if raw_seconds else "-"
        lines.append(
            f"| {r['index_type']} | {r['vectors']:,} | {r['index_bytes'] / MIB:,.0f} "
            f"| {r['peak_anon'] / MIB:,.0f} ({reported / MIB if reported else float('nan'):,.0f}) "
            f"| {raw_peak_cell} | {r['peak_anon'] / (r['index_bytes'] + HEADROOM):.2f} "
            f"| {r['build_seconds']:,.0f} | {raw_seconds_cell} | {ratio_cell} "
            f"| {r['wall_seconds']:,.0f} | {r['recall']:.3f} | {r['load']:.1f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vectors", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--types", nargs="+", default=["IVF", "HNSW", "OPQ+HNSW"], choices=index_config.INDEX_TYPES)
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for both builds (default: all)")
    parser.add_argument("--concurrent", action="store_true",
                        help="run the project's build and raw FAISS side by side (same load; with --threads 1)")
    parser.add_argument("--without-raw", action="store_true",
                        help="run the project's build alone (does a size complete, and what does it hold)")
    parser.add_argument("--results", type=Path, default=None, help="append each result as a JSON line here")
    parser.add_argument("--table-only", action="store_true", help="print the table of --results and stop")
    args = parser.parse_args()
    results: list[dict[str, Any]] = []
    if args.results is not None and args.results.exists():
        results = [json.loads(line) for line in args.results.read_text().splitlines() if line.strip()]
    if args.table_only:
        print(table(results))
        return 0
    env = dict(os.environ)
    if args.threads is not None:
        env["OMP_NUM_THREADS"] = str(args.threads)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, threads {args.threads or 'all'}")
    for n in args.vectors:
        source = synthetic(n)
        with tempfile.TemporaryDirectory(prefix="build-memory-", dir=CACHE) as directory:
            for index_type in args.types:
                result = measure(index_type, n, source, Path(directory), env, concurrent=args.concurrent,
                                 with_raw=not args.without_raw)
                results.append(result)
                if args.results is not None:
                    with args.results.open("a") as handle:
                        handle.write(json.dumps(result) + "\n")
                print(table([result]).splitlines()[-1], flush=True)
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
