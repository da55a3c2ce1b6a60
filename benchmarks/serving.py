"""Serving overhead: raw FAISS in process against `faiss-operator serve` over HTTP, in one run.

Builds (or reuses) an HNSW artifact with `faiss-operator build`, measures raw FAISS on that same
index file — single-query p50/p99 on one thread, batched QPS on all threads — then starts
`faiss-operator serve` on it and drives it with the lean load generator from a separate process:
p50/p99 at concurrency 1 and QPS at concurrency 1, 8 and 32. Prints a table with the ratios.

    python benchmarks/serving.py --vectors 100000 --requests 5000

Targets (issue 4): server p99 <= 1.5x raw p99 at concurrency 1; QPS at 32 >= 0.8x raw batched.
The load generator runs on the same cores as the server, so the HTTP numbers include its cost.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _loadgen  # noqa: E402

DIMENSION = 384


def make_data(path: Path, vectors: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((256, DIMENSION)).astype(np.float32)
    data = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(vectors, DIMENSION))
    for start in range(0, vectors, 100_000):
        end = min(vectors, start + 100_000)
        data[start:end] = centers[rng.integers(0, 256, end - start)] + 0.5 * rng.standard_normal(
            (end - start, DIMENSION)
        ).astype(np.float32)
    data.flush()


def build_artifact(workdir: Path, vectors: int, ef_search: int) -> Path:
    artifact = workdir / f"hnsw-{vectors}"
    if (artifact / "manifest.json").exists():
        return artifact
    source = workdir / f"data-{vectors}.npy"
    if not source.exists():
        make_data(source, vectors)
    subprocess.run(
        [sys.executable, "-m", "faiss_operator.cli", "build", "--source", str(source), "--out", str(artifact),
         "--index-type", "HNSW", "--config", json.dumps({"m": 32, "ef_construction": 200, "ef_search": ef_search}),
         "--eval-queries", "1000", "--termination-log", str(workdir / "termination-log")],
        check=True,
    )
    return artifact


def raw_faiss(artifact: Path, queries: np.ndarray, k: int) -> dict[str, float]:
    import faiss

    index = faiss.read_index(str(artifact / "index.faiss"))
    faiss.omp_set_num_threads(1)
    for q in queries[:200]:
        index.search(q[None, :], k)
    times = []
    for q in queries:
        started = time.perf_counter()
        index.search(q[None, :], k)
        times.append((time.perf_counter() - started) * 1000.0)
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    batch = np.concatenate([queries] * 3)
    index.search(queries, k)
    started = time.perf_counter()
    index.search(batch, k)
    qps = len(batch) / (time.perf_counter() - started)
    return {"p50": float(np.percentile(times, 50)), "p99": float(np.percentile(times, 99)), "qps": qps}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(port: int, process: subprocess.Popen[bytes], deadline_s: float = 300.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server did not become ready")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--ef-search", type=int, default=64)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1, help="repeat the whole measurement; the table shows medians")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/faiss-operator-bench"))
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)

    artifact = build_artifact(args.workdir, args.vectors, args.ef_search)
    queries = np.load(artifact / "queries.npy")
    import orjson

    bodies = [
        _loadgen.encode_post("127.0.0.1", 0, "/v1/search", orjson.dumps({"vector": q.tolist(), "k": args.k}))
        for q in queries
    ]
    rows: list[dict[str, float]] = []
    for _ in range(args.rounds):
        raw = raw_faiss(artifact, queries, args.k)
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "faiss_operator.cli", "serve", "--artifact", str(artifact), "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "warning"],
        )
        try:
            wait_ready(port, server)
            load = {c: _loadgen.run_load("127.0.0.1", port, bodies, concurrency=c, total=args.requests) for c in (1, 8, 32)}
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
        for result in load.values():
            assert set(result.statuses) == {200}, result.statuses
        rows.append({
            "raw_p50": raw["p50"], "raw_p99": raw["p99"], "raw_qps": raw["qps"],
            "http_p50": load[1].percentile_ms(50), "http_p99": load[1].percentile_ms(99),
            "qps1": load[1].qps, "qps8": load[8].qps, "qps32": load[32].qps,
        })
    median = {key: float(np.median([row[key] for row in rows])) for key in rows[0]}
    print(f"\nHNSW32 {args.vectors}x{DIMENSION}, efSearch {args.ef_search}, k {args.k}, {os.cpu_count()} cores, "
          f"{args.requests} requests per level, median of {args.rounds} round(s); load average {os.getloadavg()[0]:.1f}")
    print("| measure | raw FAISS | server (HTTP) | ratio |")
    print("|---|---|---|---|")
    print(f"| p50 ms, concurrency 1 | {median['raw_p50']:.3f} | {median['http_p50']:.3f} | {median['http_p50'] / median['raw_p50']:.2f}x |")
    print(f"| p99 ms, concurrency 1 | {median['raw_p99']:.3f} | {median['http_p99']:.3f} | {median['http_p99'] / median['raw_p99']:.2f}x (target <= 1.5x) |")
    print(f"| QPS, concurrency 1 | | {median['qps1']:.0f} | |")
    print(f"| QPS, concurrency 8 | | {median['qps8']:.0f} | {median['qps8'] / median['raw_qps']:.2f}x |")
    print(f"| QPS, concurrency 32 vs raw batched | {median['raw_qps']:.0f} | {median['qps32']:.0f} | {median['qps32'] / median['raw_qps']:.2f}x (target >= 0.8x) |")


if __name__ == "__main__":
    main()
