"""What a user pays for serving: raw FAISS in process against `faiss-operator serve` over HTTP.

Builds (or reuses) an HNSW artifact with `faiss-operator build` (on generated clustered data, or
on real embeddings with --data), measures raw FAISS on that same index file — single-query
p50/p99 on one thread, batched QPS on all threads and the CPU per query of that batch — then,
for each --workers setting (1 process, and one per core), starts `faiss-operator serve` on it and
drives it with a load generator in a separate process: p50/p99 at concurrency 1, QPS at 1, 8
and 32, the server's CPU per query at 32 (every process of the server, the generator excluded),
and the RSS and PSS of each server process after the load. Prints a table of medians with the
ratios to raw FAISS, for each request form (JSON; raw float32) and load generator (wrk, in C,
when installed; the Python one otherwise or as well).

    python benchmarks/serving.py --vectors 50000 --rounds 3

Goals (issue 12): server CPU per query <= 1.5x FAISS's at concurrency 32; QPS at 32 >= 0.7x raw
batched; N workers' total PSS <= 1.2x one worker's; p99 at concurrency 1 <= 2x raw. The load
generator runs on the same cores as the server, so QPS includes its cost; CPU per query does not.
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
import _rawfaiss  # noqa: E402
import _wrk  # noqa: E402

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


def build_artifact(workdir: Path, vectors: int, ef_search: int, data: Path | None = None) -> Path:
    artifact = workdir / (f"hnsw-{vectors}" if data is None else f"hnsw-{data.stem}-{vectors}")
    if (artifact / "manifest.json").exists():
        return artifact
    source = workdir / f"data-{vectors}.npy" if data is None else workdir / f"{data.stem}-{vectors}.npy"
    if not source.exists():
        if data is None:
            make_data(source, vectors)
        else:
            rows = np.load(data, mmap_mode="r")
            if rows.ndim != 2 or len(rows) < vectors:
                raise SystemExit(f"{data}: need a 2-d array of at least {vectors} rows, got shape {rows.shape}")
            np.save(source, np.ascontiguousarray(rows[:vectors], dtype=np.float32))
    subprocess.run(
        [sys.executable, "-m", "faiss_operator.cli", "build", "--source", str(source), "--out", str(artifact),
         "--index-type", "HNSW", "--config", json.dumps({"m": 32, "ef_construction": 200, "ef_search": ef_search}),
         "--eval-queries", "1000", "--termination-log", str(workdir / "termination-log")],
        check=True,
    )
    return artifact


def raw_faiss(artifact: Path, queries: np.ndarray, k: int) -> dict[str, float]:
    import faiss

    return _rawfaiss.measure(faiss.read_index(str(artifact / "index.faiss")), queries, k, warmup=200)


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


def process_tree(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid, *(p for child in children for p in process_tree(int(child)))]


def memory_mb(pid: int) -> tuple[float, float]:
    """(RSS, PSS) of one process in MiB, from /proc/PID/smaps_rollup; mapped index pages count in
    both, split between the processes that map them in PSS."""
    values = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        values[name] = int(rest.split()[0]) / 1024
    return values["Rss"], values["Pss"]


def process_cpu_seconds(pid: int) -> float:
    """CPU of the server process and its serving processes (--workers), all threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return own + sum(process_cpu_seconds(int(child)) for child in children)


FORMS = {"json": "application/json", "binary": "application/octet-stream"}


def encode_bodies(queries: np.ndarray, k: int, form: str) -> list[bytes]:
    import orjson

    if form == "json":
        return [orjson.dumps({"vector": q.tolist(), "k": k}) for q in queries]
    return [q.astype("<f4").tobytes() for q in queries]


def drive(driver: str, form: str, port: int, pid: int, queries: np.ndarray, args: argparse.Namespace) -> dict[str, float]:
    """p50/p99 at concurrency 1, QPS at 1, 8 and 32, and CPU per request of client and server at 32."""
    bodies = encode_bodies(queries, args.k, form)
    path = "/v1/search" if form == "json" else f"/v1/search?k={args.k}"
    row: dict[str, float] = {}
    for concurrency in (1, 8, 32):
        if driver == "wrk":
            result = _wrk.run(port, bodies, content_type=FORMS[form], path=path, concurrency=concurrency,
                              seconds=args.seconds, server_cpu=lambda: process_cpu_seconds(pid))
            assert result.non_2xx == 0 and result.socket_errors == 0, result
            p50, p99, qps, requests = result.p50_ms, result.p99_ms, result.qps, result.requests
            client_cpu, server_cpu = result.client_cpu_seconds, result.server_cpu_seconds
        else:
            encoded = [_loadgen.encode_post("127.0.0.1", port, path, body, FORMS[form]) for body in bodies]
            server_before = process_cpu_seconds(pid)
            load = _loadgen.run_load("127.0.0.1", port, encoded, concurrency=concurrency, total=args.requests)
            assert set(load.statuses) == {200}, load.statuses
            p50, p99, qps, requests = load.percentile_ms(50), load.percentile_ms(99), load.qps, load.requests
            # The server's CPU here includes the generator's 200 warm-up requests.
            client_cpu, server_cpu = load.client_cpu_seconds, process_cpu_seconds(pid) - server_before
            requests_served = requests + 200
            server_cpu = server_cpu * requests / requests_served
        if concurrency == 1:
            row["http_p50"], row["http_p99"] = p50, p99
        row[f"qps{concurrency}"] = qps
        if concurrency == 32:
            row["client_us"] = client_cpu / requests * 1e6
            row["server_us"] = server_cpu / requests * 1e6
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--data", type=Path, help="real embeddings (.npy, 384-d rows; benchmarks/embed_wordnet.py) "
                        "instead of generated clustered data")
    parser.add_argument("--requests", type=int, default=5000, help="requests per level for the Python generator")
    parser.add_argument("--seconds", type=int, default=5, help="duration of each level for wrk")
    parser.add_argument("--ef-search", type=int, default=64)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1, help="repeat the whole measurement; the table shows medians")
    parser.add_argument("--workers", default=f"1,{os.cpu_count() or 1}",
                        help="serve --workers settings to compare, comma-separated (default: 1 and one per core)")
    parser.add_argument("--drivers", default="wrk,python",
                        help="load generators to compare: wrk (C, if installed) and/or python (benchmarks/_loadgen.py)")
    parser.add_argument("--forms", default="binary,json", help="request forms: json and/or binary (float32 body)")
    parser.add_argument("--serve-args", default="", help="extra arguments for `faiss-operator serve`, space-separated")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/faiss-operator-bench"))
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    drivers = [d for d in args.drivers.split(",") if d]
    if "wrk" in drivers and not _wrk.available():
        print("note: wrk is not installed (apt-get install wrk); using the Python load generator only")
        drivers = [d for d in drivers if d != "wrk"] or ["python"]
    forms = [f for f in args.forms.split(",") if f]
    unknown = set(drivers) - {"wrk", "python"} | set(forms) - set(FORMS)
    if unknown:
        parser.error(f"unknown driver or form: {sorted(unknown)}")
    workers = [int(w) for w in args.workers.split(",") if w]

    artifact = build_artifact(args.workdir, args.vectors, args.ef_search, args.data)
    queries = np.load(artifact / "queries.npy")
    combos = [(w, driver, form) for w in workers for driver in drivers for form in forms]
    raws: list[dict[str, float]] = []
    rows: dict[tuple[int, str, str], list[dict[str, float]]] = {combo: [] for combo in combos}
    memory: dict[int, list[list[tuple[float, float]]]] = {w: [] for w in workers}
    loads: list[float] = []
    for _ in range(args.rounds):
        raws.append(raw_faiss(artifact, queries, args.k))
        for count in workers:
            port = free_port()
            server = subprocess.Popen(
                [sys.executable, "-m", "faiss_operator.cli", "serve", "--artifact", str(artifact), "--host",
                 "127.0.0.1", "--port", str(port), "--log-level", "warning", "--workers", str(count),
                 *args.serve_args.split()],
            )
            try:
                wait_ready(port, server)
                for combo in combos:
                    if combo[0] == count:
                        rows[combo].append(drive(combo[1], combo[2], port, server.pid, queries, args))
                memory[count].append([memory_mb(pid) for pid in process_tree(server.pid)])
                loads.append(os.getloadavg()[0])
            finally:
                server.send_signal(signal.SIGTERM)
                server.wait(timeout=60)

    raw = {key: float(np.median([r[key] for r in raws])) for key in raws[0]}
    medians = {combo: {key: float(np.median([r[key] for r in rs])) for key in rs[0]} for combo, rs in rows.items()}
    data = "generated clustered" if args.data is None else args.data.name
    print(f"\nHNSW32 {args.vectors}x{queries.shape[1]} ({data}), efSearch {args.ef_search}, k {args.k}, "
          f"{os.cpu_count()} cores, median of {args.rounds} round(s); serve args {args.serve_args!r}; "
          f"load average {min(loads):.1f}-{max(loads):.1f} (1 min) while measuring")
    print("| measure | raw FAISS | " + " | ".join(f"{w} worker(s), {f} / {d}" for w, d, f in combos) + " |")
    print("|---|---|" + "---|" * len(combos))

    def line(name: str, raw_value: str, key: str, base: float | None, fmt: str, note: str = "") -> None:
        cells = []
        for combo in combos:
            value = medians[combo][key]
            cells.append(f"{value:{fmt}}" + (f" ({value / base:.2f}x)" if base else ""))
        print(f"| {name} | {raw_value} | " + " | ".join(cells) + f" |{note}")

    line("p50 ms, concurrency 1", f"{raw['p50']:.3f}", "http_p50", raw["p50"], ".3f")
    line("p99 ms, concurrency 1", f"{raw['p99']:.3f}", "http_p99", raw["p99"], ".3f", " goal <= 2x")
    line("QPS, concurrency 1", "", "qps1", raw["qps"], ".0f")
    line("QPS, concurrency 8", "", "qps8", raw["qps"], ".0f")
    line("QPS, concurrency 32 vs raw batched", f"{raw['qps']:.0f}", "qps32", raw["qps"], ".0f", " goal >= 0.7x")
    line("server CPU µs/query, c32 (vs FAISS's)", f"{raw['cpu_us']:.0f}", "server_us", raw["cpu_us"], ".0f",
         " goal <= 1.5x")
    line("load generator CPU µs/request, c32", "", "client_us", None, ".0f")
    print()
    one = float(np.median([sum(pss for _, pss in m) for m in memory[workers[0]]]))
    for count in workers:
        per_round = memory[count]
        rss = [float(np.median([m[i][0] for m in per_round])) for i in range(len(per_round[0]))]
        pss = [float(np.median([m[i][1] for m in per_round])) for i in range(len(per_round[0]))]
        print(f"memory, {count} worker(s): RSS MiB per process {[round(r) for r in rss]}, "
              f"PSS MiB per process {[round(p) for p in pss]}, total PSS {sum(pss):.0f} "
              f"({sum(pss) / one:.2f}x {workers[0]} worker(s); goal <= 1.2x); index.faiss "
              f"{(artifact / 'index.faiss').stat().st_size / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
