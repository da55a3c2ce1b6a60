"""Choose the serving HTTP stack by measurement: the same search endpoint on several stacks.

Each candidate serves one raw FAISS HNSW index (no faiss_operator index layer, so only the stack
differs) with the same JSON request and response, and is driven by the same lean load
generator (benchmarks/_loadgen.py) from its own process: latency p50/p99 at concurrency 1 and
QPS at concurrency 8 and 32. Raw FAISS in-process numbers are measured in the same run.

    python benchmarks/http_stacks.py --vectors 100000 --requests 4000

Candidates:
  aiohttp-batch   aiohttp, queries micro-batched onto 2 search threads (faiss_operator.server.batching)
  uvicorn-batch   Starlette on uvicorn (uvloop + httptools), same micro-batcher
  stdlib-threads  http.server.ThreadingHTTPServer, one thread per connection searching directly
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _loadgen  # noqa: E402
import _rawfaiss  # noqa: E402

CANDIDATES = ("aiohttp-batch", "uvicorn-batch", "stdlib-threads")
DIMENSION = 384


def _search_response(distances: np.ndarray, positions: np.ndarray) -> bytes:
    import orjson

    return orjson.dumps({"results": [{"ids": p.tolist(), "distances": d.tolist()} for d, p in zip(distances, positions)]})


def _parse(body: bytes) -> tuple[np.ndarray, int]:
    import orjson

    document = orjson.loads(body)
    return np.asarray(document["vectors"], dtype=np.float32), int(document.get("k", 10))


def _single_thread_search(index: object):  # type: ignore[no-untyped-def]
    import faiss

    def initializer() -> None:
        faiss.omp_set_num_threads(1)

    def search(vectors: np.ndarray, k: int, _params: object) -> tuple[np.ndarray, np.ndarray]:
        return index.search(vectors, k)  # type: ignore[attr-defined,no-any-return]

    return initializer, search


def serve(candidate: str, index_path: str, port: int, ef_search: int) -> None:
    import faiss

    index = faiss.read_index(index_path)
    index.hnsw.efSearch = ef_search
    if candidate == "aiohttp-batch":
        from aiohttp import web

        from faiss_operator.server.batching import MicroBatcher

        initializer, search = _single_thread_search(index)
        batcher = MicroBatcher(search, workers=2, thread_initializer=initializer)

        async def handle(request: web.Request) -> web.Response:
            vectors, k = _parse(await request.read())
            distances, positions = await batcher.search(vectors, k)
            return web.Response(body=_search_response(distances, positions), content_type="application/json")

        app = web.Application()
        app.router.add_post("/v1/search", handle)
        web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)
    elif candidate == "uvicorn-batch":
        import uvicorn
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import Response
        from starlette.routing import Route

        from faiss_operator.server.batching import MicroBatcher

        initializer, search = _single_thread_search(index)
        holder: dict[str, MicroBatcher] = {}

        async def endpoint(request: Request) -> Response:
            if "b" not in holder:
                holder["b"] = MicroBatcher(search, workers=2, thread_initializer=initializer)
            vectors, k = _parse(await request.body())
            distances, positions = await holder["b"].search(vectors, k)
            return Response(_search_response(distances, positions), media_type="application/json")

        app = Starlette(routes=[Route("/v1/search", endpoint, methods=["POST"])])
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, loop="uvloop", http="httptools")
    elif candidate == "stdlib-threads":
        import http.server

        faiss.omp_set_num_threads(1)

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in two writes

            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                vectors, k = _parse(self.rfile.read(length))
                distances, positions = index.search(vectors, k)
                body = _search_response(distances, positions)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        http.server.ThreadingHTTPServer.daemon_threads = True
        http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
    else:
        raise SystemExit(f"unknown candidate {candidate}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, deadline_s: float = 120.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server on port {port} did not start")


def build_index(path: Path, vectors: int, seed: int = 0) -> np.ndarray:
    import faiss

    rng = np.random.default_rng(seed)
    # A Gaussian mixture, so that HNSW has structure to find rather than uniform noise.
    centers = rng.standard_normal((256, DIMENSION)).astype(np.float32)
    data = centers[rng.integers(0, 256, vectors)] + 0.5 * rng.standard_normal((vectors, DIMENSION)).astype(np.float32)
    queries = centers[rng.integers(0, 256, 1000)] + 0.5 * rng.standard_normal((1000, DIMENSION)).astype(np.float32)
    if not path.exists():
        index = faiss.IndexHNSWFlat(DIMENSION, 32)
        index.hnsw.efConstruction = 200
        index.add(data)
        faiss.write_index(index, str(path))
    return queries.astype(np.float32)


def raw_numbers(index_path: Path, queries: np.ndarray, ef_search: int, k: int) -> dict[str, float]:
    import faiss

    index = faiss.read_index(str(index_path))
    index.hnsw.efSearch = ef_search
    return _rawfaiss.measure(index, queries, k, warmup=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", choices=CANDIDATES)
    parser.add_argument("--index", default="/tmp/faiss-operator-bench/hnsw.faiss")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--ef-search", type=int, default=64)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--candidates", default=",".join(CANDIDATES))
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds; the table shows medians")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.index, args.port, args.ef_search)
        return

    index_path = Path(args.index).with_name(f"hnsw-{args.vectors}.faiss")
    index_path.parent.mkdir(parents=True, exist_ok=True)
    queries = build_index(index_path, args.vectors)
    import orjson

    bodies = [
        _loadgen.encode_post("127.0.0.1", 0, "/v1/search", orjson.dumps({"vectors": [q.tolist()], "k": args.k}))
        for q in queries
    ]
    candidates = args.candidates.split(",")
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in ["raw", *candidates]}
    for _ in range(args.rounds):
        rows["raw"].append(raw_numbers(index_path, queries, args.ef_search, args.k))
        for candidate in candidates:
            rows[candidate].append(_measure(candidate, index_path, bodies, args))
    median = {name: {key: float(np.median([r[key] for r in runs])) for key in runs[0]} for name, runs in rows.items()}
    raw = median["raw"]
    print(f"HNSW32 {args.vectors}x{DIMENSION} efSearch {args.ef_search} k {args.k}; {os.cpu_count()} cores; "
          f"median of {args.rounds} interleaved round(s); load average {os.getloadavg()[0]:.1f}")
    print(f"raw FAISS: p50 {raw['p50']:.3f} ms  p99 {raw['p99']:.3f} ms  batched QPS {raw['qps']:.0f}")
    print("| stack | c1 p50 ms | c1 p99 ms | p99/raw | c1 QPS | c8 QPS | c32 QPS | c32/raw batched |")
    print("|---|---|---|---|---|---|---|---|")
    for candidate in candidates:
        m = median[candidate]
        print(f"| {candidate} | {m['p50']:.3f} | {m['p99']:.3f} | {m['p99'] / raw['p99']:.2f} | {m['qps1']:.0f} "
              f"| {m['qps8']:.0f} | {m['qps32']:.0f} | {m['qps32'] / raw['qps']:.2f} |")


def _measure(candidate: str, index_path: Path, bodies: list[bytes], args: argparse.Namespace) -> dict[str, float]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", candidate, "--index", str(index_path), "--port", str(port),
         "--ef-search", str(args.ef_search)],
    )
    try:
        _wait_listening(port)
        results = {c: _loadgen.run_load("127.0.0.1", port, bodies, concurrency=c, total=args.requests) for c in (1, 8, 32)}
    finally:
        process.terminate()
        process.wait(timeout=30)
    for result in results.values():
        assert set(result.statuses) == {200}, result.statuses
    one = results[1]
    return {"p50": one.percentile_ms(50), "p99": one.percentile_ms(99), "qps1": one.qps,
            "qps8": results[8].qps, "qps32": results[32].qps}


if __name__ == "__main__":
    main()
