"""`faiss-operator tune`: run FAISSTuner from the command line and print or save the ranking.

The JSON it writes (`--output`) is what `FAISSIndex.from_tuning_result` and the resource's
`config` field take, so a tuning run on a sample of real data can become a spec directly.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from faiss_operator.index import config as index_config
from faiss_operator.index import tuner

TABLE_ROWS = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, help="embeddings as a .npy file (n, d); default: generated clustered data")
    parser.add_argument("--queries", type=Path, help="held-out queries as .npy; default: rows held out of --data")
    parser.add_argument("--dimension", type=int, default=384, help="dimension of generated data (default 384)")
    parser.add_argument("--sample-size", type=int, default=10_000, help="vectors to generate without --data")
    parser.add_argument("--num-queries", type=int, default=200, help="queries to hold out (default 200)")
    parser.add_argument(
        "--types", default=",".join(tuner.DEFAULT_TYPES), help=f"comma-separated index types of {index_config.INDEX_TYPES}"
    )
    parser.add_argument("--target-recall", type=float, default=0.95,
                        help="least recall@k a result must reach to be the best")
    parser.add_argument("--max-p99-ms", type=float, default=None,
                        help="most p99 single-query latency a result may have to be the best")
    parser.add_argument("--optimize", choices=tuner.OBJECTIVES, default="memory",
                        help="what the best of the results meeting the target has least of")
    parser.add_argument("-k", type=int, default=10, help="neighbours per query for recall@k")
    parser.add_argument("--metric", default="L2", help="L2 or InnerProduct")
    parser.add_argument("--normalize", action="store_true", help="L2-normalise vectors (cosine with InnerProduct)")
    parser.add_argument("--output", type=Path, help="write the full report as JSON to this file")
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    report = tune(args)
    if report is None:
        return 2
    print(report.to_json() if args.json else format_report(report))
    return 0


def tune(args: argparse.Namespace) -> tuner.TuningReport | None:
    """Run the sweep the flags ask for and write `--output`; None after saying why it could not."""
    try:
        embeddings = _load(args.data, "--data") if args.data else None
        queries = _load(args.queries, "--queries") if args.queries else None
        if queries is not None and embeddings is None:
            raise tuner.TuningError("--queries needs --data")
        dimension = int(embeddings.shape[1]) if embeddings is not None and embeddings.ndim == 2 else args.dimension
        target = tuner.TuningTarget(
            min_recall=args.target_recall, max_p99_ms=args.max_p99_ms, optimize=args.optimize
        )
        report = tuner.FAISSTuner(dimension, metric=args.metric, normalize=args.normalize, k=args.k).tune(
            embeddings,
            queries,
            index_types=[name.strip() for name in args.types.split(",") if name.strip()],
            target=target,
            sample_size=args.sample_size,
            num_queries=args.num_queries,
        )
    except (ValueError, OSError) as error:
        print(f"faiss-operator tune: {error}", file=sys.stderr)
        return None
    if args.output:
        args.output.write_text(report.to_json() + "\n")
    return report


def _load(path: Path, flag: str) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise tuner.TuningError(f"{flag} {path}: cannot read a .npy array: {error}") from None
    if not isinstance(array, np.ndarray) or array.ndim != 2:
        raise tuner.TuningError(f"{flag} {path}: expected a 2-d array (n, d)")
    return array


def _varying_keys(report: tuner.TuningReport) -> dict[str, set[str]]:
    """Per index type, the config keys whose values differ between results: the ones worth a column."""
    seen: dict[str, dict[str, set[str]]] = {}
    for result in report.results:
        for key, value in result.config.items():
            seen.setdefault(result.index_type, {}).setdefault(key, set()).add(repr(value))
    return {name: {k for k, values in keys.items() if len(values) > 1} for name, keys in seen.items()}


def format_report(report: tuner.TuningReport) -> str:
    goal = report.target
    lines = [
        f"{report.num_vectors} vectors x {report.dimension}-d ({report.data}), {report.num_queries} queries, "
        f"recall@{report.k} vs exact; target recall >= {goal.min_recall}"
        + (f", p99 <= {goal.max_p99_ms} ms" if goal.max_p99_ms else "")
        + f", cheapest by {goal.optimize}",
        f"{'#':>3} {'type':<9} {'config (keys varied)':<52} {'recall':>6} {'p50ms':>7} {'p99ms':>7} {'B/vec':>7} {'build s':>7}  ",
    ]
    varying = _varying_keys(report)
    for number, result in enumerate(report.results[:TABLE_ROWS], start=1):
        shown = ",".join(f"{k}={v}" for k, v in result.config.items() if k in varying.get(result.index_type, ()))
        flags = ("target " if result.meets_target else "") + ("pareto" if result.pareto else "")
        lines.append(
            f"{number:>3} {result.index_type:<9} {shown[:52]:<52} {result.recall_at_k:>6.3f} {result.p50_ms:>7.3f} "
            f"{result.p99_ms:>7.3f} {result.bytes_per_vector:>7.0f} {result.build_seconds:>7.2f}  {flags}"
        )
    if len(report.results) > TABLE_ROWS:
        lines.append(f"... {len(report.results) - TABLE_ROWS} more (see --json)")
    lines.append("best: " + ("none meets the target" if report.best is None else f"#1 {report.best.index_type}"))
    return "\n".join(lines)
