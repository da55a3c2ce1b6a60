"""Compare the index types as the seed's table does — and the library against raw FAISS.

For each row the same index is built twice in the same run: once straight with the faiss API
(direct constructors, same training sample, same parameters) and once through `FAISSIndex`.
Both are measured the same way (recall@k against exact search on held-out queries, single-query
latency on one thread, batch QPS, serialized bytes per vector, build time), so the ratio columns
show the library's own overhead and nothing else.

    python benchmarks/index_types.py                    # quick: 10k generated 384-d vectors
    python benchmarks/index_types.py --n 1000000        # the seed's full table (long)
    python benchmarks/index_types.py --data ~/.cache/faiss-operator/wordnet-minilm.npy --n 99000
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import data as bench_data  # noqa: E402

from faiss_operator.index import FAISSIndex, config, evaluation, factory  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Row:
    """One build, measured at one or more search-time settings."""

    label: str
    index_type: str
    config: dict[str, Any]
    search: list[dict[str, int]]


def default_rows(variants: bool) -> list[Row]:
    rows = [
        Row("Flat (exact)", "Flat", {}, [{}]),
        Row("IVF", "IVF", {}, [{"nprobe": 10}, {"nprobe": 32}]),
        Row("HNSW32", "HNSW", {"m": 32, "ef_construction": 200}, [{"ef_search": 32}, {"ef_search": 64}]),
        Row("OPQ+HNSW (HNSW16_SQ6)", "OPQ+HNSW", {"encoding": "SQ6", "m_hnsw": 16}, [{"ef_search": 64}, {"ef_search": 128}]),
    ]
    if variants:
        rows += [
            Row("OPQ+HNSW (HNSW16_SQ8)", "OPQ+HNSW", {"encoding": "SQ8", "m_hnsw": 16}, [{"ef_search": 64}, {"ef_search": 128}]),
            Row("OPQ+HNSW (HNSW32_SQ4)", "OPQ+HNSW", {"encoding": "SQ4", "m_hnsw": 32}, [{"ef_search": 64}, {"ef_search": 128}]),
            Row("OPQ+HNSW (OPQ48,HNSW16_PQ48)", "OPQ+HNSW", {"encoding": "PQ", "m_pq": 48, "m_hnsw": 16},
                [{"ef_search": 64}, {"ef_search": 128}]),
        ]
    return rows


# -- raw FAISS, built with the faiss API directly ------------------------------------------------

_SQ_TYPES = {"SQ4": "QT_4bit", "SQ6": "QT_6bit", "SQ8": "QT_8bit"}


def build_raw(row: Row, base: np.ndarray, nlist: int | None) -> tuple[Any, float]:
    """The row's index built with faiss constructors; (index, build seconds)."""
    d = base.shape[1]
    values = config.parse_config(row.index_type, row.config).model_dump(mode="json")
    started = time.perf_counter()
    index: Any
    if row.index_type == "Flat":
        index = faiss.IndexFlatL2(d)
    elif row.index_type == "IVF":
        assert nlist is not None
        quantizer = faiss.IndexFlatL2(d)
        index = faiss.IndexIVFFlat(quantizer, d, nlist)
        index.train(training_sample(base, min(len(base), config.MAX_POINTS_PER_CENTROID * nlist)))
    elif row.index_type == "HNSW":
        index = faiss.IndexHNSWFlat(d, values["m"])
        index.hnsw.efConstruction = values["ef_construction"]
    elif values["encoding"] == "PQ":
        m_pq, blocks = values["m_pq"], values["n_subquantizers"] or values["m_pq"]
        graph = faiss.IndexHNSWPQ(d, m_pq, values["m_hnsw"])
        graph.hnsw.efConstruction = values["ef_construction"]
        faiss.downcast_index(graph.storage).do_polysemous_training = False
        rotation = faiss.OPQMatrix(d, blocks)
        index = faiss.IndexPreTransform(rotation, graph)
        index.train(training_sample(base, min(len(base), 256 * 256)))
    else:
        quantizer_type = getattr(faiss.ScalarQuantizer, _SQ_TYPES[values["encoding"]])
        index = faiss.IndexHNSWSQ(d, quantizer_type, values["m_hnsw"])
        index.hnsw.efConstruction = values["ef_construction"]
        index.train(training_sample(base, min(len(base), factory.SQ_TRAINING_SAMPLE)))
    index.add(base)
    return index, time.perf_counter() - started


def training_sample(base: np.ndarray, size: int) -> np.ndarray:
    """The same rows the library trains on (seeded choice), so both sides learn the same codebooks."""
    if size >= len(base):
        return base
    rows = np.random.default_rng(0).choice(len(base), size=size, replace=False)
    return np.ascontiguousarray(base[np.sort(rows)])


def set_raw_search(index: Any, params: dict[str, int]) -> None:
    if "nprobe" in params:
        faiss.extract_index_ivf(index).nprobe = params["nprobe"]
    if "ef_search" in params:
        factory.hnsw_of(index).efSearch = params["ef_search"]


# -- measuring ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Measurement:
    recall: float
    p50_ms: float
    p99_ms: float
    bytes_per_vector: float
    build_s: float
    qps: float
    p50_objects_ms: float | None = None


def paired_latency(searches: list[Any], queries: np.ndarray, k: int) -> list[evaluation.LatencyStats]:
    """Single-query latency of each search function, interleaved query by query (rotating who
    goes first) on one thread, so that on a shared machine all of them meet the same contention."""
    timings = np.zeros((len(searches), len(queries)))
    with evaluation.faiss_threads(1):
        for search in searches:
            for row in range(min(10, len(queries))):
                search(queries[row : row + 1], k)
        for row in range(len(queries)):
            query = queries[row : row + 1]
            for turn in range(len(searches)):
                which = (row + turn) % len(searches)
                started = time.perf_counter()
                searches[which](query, k)
                timings[which, row] = time.perf_counter() - started
    return [evaluation.percentiles_ms(timing) for timing in timings]


def measure(
    search: Any, latency: evaluation.LatencyStats, queries: np.ndarray, truth: np.ndarray, k: int,
    memory: int, n: int, build_s: float,
) -> Measurement:
    _, found = search(queries, k)
    return Measurement(
        recall=evaluation.recall_at_k(np.asarray(found), truth, k),
        p50_ms=latency.p50_ms,
        p99_ms=latency.p99_ms,
        bytes_per_vector=memory / n,
        build_s=build_s,
        qps=evaluation.batch_qps(search, queries, k, threads=None),
    )


def run_row(row: Row, base: np.ndarray, queries: np.ndarray, truth: np.ndarray, k: int) -> list[tuple[str, Measurement, Measurement]]:
    library = FAISSIndex(base.shape[1], row.index_type, {**row.config, **row.search[0]}, env={})
    started = time.perf_counter()
    library.add_embeddings(base)
    library_build = time.perf_counter() - started
    nlist = factory.effective_nlist_of(library.faiss_index)
    raw, raw_build = build_raw(row, base, nlist)
    raw_memory = evaluation.memory_bytes(raw)
    results = []
    for number, wanted in enumerate(row.search):
        # On small data the automatic nlist can fall below the row's nprobe.
        params = {key: min(value, nlist) if key == "nprobe" and nlist else value for key, value in wanted.items()}
        set_raw_search(raw, params)
        call_params = params if number > 0 else None

        def library_search(batch: np.ndarray, kk: int, p: dict[str, int] | None = call_params) -> Any:
            return library.search_arrays(batch, kk, params=p)

        def library_objects(batch: np.ndarray, kk: int, p: dict[str, int] | None = call_params) -> Any:
            return library.search(batch, kk, params=p)

        raw_latency, lib_latency, objects_latency = paired_latency(
            [raw.search, library_search, library_objects], queries, k
        )
        raw_m = measure(raw.search, raw_latency, queries, truth, k, raw_memory, len(base), raw_build)
        lib_m = measure(library_search, lib_latency, queries, truth, k, library.memory_bytes(), len(base), library_build)
        lib_m = dataclasses.replace(lib_m, p50_objects_ms=objects_latency.p50_ms)
        label = row.label + "".join(f" {key}={value}" for key, value in params.items())
        results.append((label, raw_m, lib_m))
    return results


def format_table(results: list[tuple[str, Measurement, Measurement]], k: int) -> str:
    header = (
        f"| index | impl | R@{k} | p50 ms | p99 ms | bytes/vector | build s | batch QPS | search() p50 ms "
        f"| p50 lib/raw | p99 lib/raw | build lib/raw | memory lib/raw |"
    )
    lines = [header, "|" + "---|" * 13]
    for label, raw, lib in results:
        lines.append(
            f"| {label} | raw faiss | {raw.recall:.3f} | {raw.p50_ms:.3f} | {raw.p99_ms:.3f} | {raw.bytes_per_vector:,.0f} "
            f"| {raw.build_s:.1f} | {raw.qps:,.0f} | | | | | |"
        )
        lines.append(
            f"| {label} | FAISSIndex | {lib.recall:.3f} | {lib.p50_ms:.3f} | {lib.p99_ms:.3f} | {lib.bytes_per_vector:,.0f} "
            f"| {lib.build_s:.1f} | {lib.qps:,.0f} | {lib.p50_objects_ms or 0:.3f} "
            f"| {lib.p50_ms / raw.p50_ms:.2f} | {lib.p99_ms / raw.p99_ms:.2f} | {lib.build_s / max(raw.build_s, 1e-9):.2f} "
            f"| {lib.bytes_per_vector / raw.bytes_per_vector:.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="index types: raw FAISS beside FAISSIndex, measured in one run")
    parser.add_argument("--n", type=int, default=10_000, help="base vectors (default 10000; 1000000 for the full table)")
    parser.add_argument("--queries", type=int, default=1000, help="held-out queries (default 1000)")
    parser.add_argument("--data", type=Path, default=None, help=".npy of embeddings (default: generated clustered 384-d)")
    parser.add_argument("--dimension", type=int, default=384, help="dimension of generated data")
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--rows", default=None, help="comma-separated labels to run (prefix match)")
    parser.add_argument("--variants", action="store_true", help="add the OPQ+HNSW encodings compared for the default")
    parser.add_argument("--no-flat", action="store_true", help="skip exact search (slow at 1M)")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    dataset = bench_data.load(args.data, n=args.n, queries=args.queries, dimension=args.dimension)
    truth = evaluation.exact_neighbors(dataset.base, dataset.queries, args.k)
    rows = [r for r in default_rows(args.variants) if not (args.no_flat and r.index_type == "Flat")]
    if args.rows:
        wanted = [w.strip() for w in args.rows.split(",")]
        rows = [r for r in rows if any(r.label.startswith(w) for w in wanted)]
    print(
        f"# {len(dataset.base)} base vectors, {len(dataset.queries)} queries; data: {dataset.description}\n"
        f"# faiss {faiss.__version__}, {os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
        f"load average at start {os.getloadavg()[0]:.1f}; latency: one query at a time on 1 thread; "
        f"QPS: one batch on all threads",
        flush=True,
    )
    results = []
    for row in rows:
        results.extend(run_row(row, dataset.base, dataset.queries, truth, args.k))
        print(f"# done {row.label} ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    print(format_table(results, args.k))
    print(f"# load average at end {os.getloadavg()[0]:.1f}; total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
