"""`faiss-operator tune`: the index layer's sweep (index/command.py), printed as a table, as JSON,
or as the spec fragment of its best result (`--output-format spec`).

The fragment is what a user pastes into a FaissIndex: `indexType` and `config` in the resource's
camelCase, only the keys that have a value. It lives in `api/` because the mapping between the
index layer's snake_case and the resource's camelCase is there (api/naming.py), and the index layer
knows nothing of the resource.
"""

from __future__ import annotations

import argparse
import sys

import yaml

from faiss_operator.index import command as index_command
from faiss_operator.index import config as index_config
from faiss_operator.index import tuner

FORMATS = ("table", "json", "spec")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    index_command.add_arguments(parser)
    parser.add_argument(
        "--output-format", choices=FORMATS, default=None,
        help="table (the ranking), json (the whole report) or spec (the best result as a FaissIndex spec "
        "fragment to paste: indexType and config in camelCase); default table, json with --json",
    )


def run(args: argparse.Namespace) -> int:
    output_format = args.output_format or ("json" if args.json else "table")
    if args.json and output_format != "json":
        print(f"faiss-operator tune: --json and --output-format {output_format} disagree", file=sys.stderr)
        return 2
    report = index_command.tune(args)
    if report is None:
        return 2
    if output_format == "spec":
        if report.best is None:
            print("faiss-operator tune: no result meets the target, so there is no spec to print; "
                  "lower --target-recall or see the table", file=sys.stderr)
            return 1
        print(spec_fragment(report.best, k=report.k), end="")
        return 0
    print(report.to_json() if output_format == "json" else index_command.format_report(report))
    return 0


def spec_fragment(result: tuner.TuningResult, *, k: int) -> str:
    """The `spec:` lines for `result`: a comment with its measurements, then indexType and config."""
    config = index_config.parse_config(result.index_type, result.config)
    fragment = {"indexType": result.index_type, "config": config.to_wire(explicit_only=True)}
    measured = (
        f"# faiss-operator tune: recall@{k} {result.recall_at_k:.3f}, p99 {result.p99_ms:.3f} ms, "
        f"{result.bytes_per_vector:.0f} B/vector\n"
    )
    return measured + yaml.safe_dump(fragment, sort_keys=False)
