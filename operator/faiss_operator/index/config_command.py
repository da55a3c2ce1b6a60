"""`faiss-operator config`: show the effective index config and which layer supplied each value.

When a deployment behaves unlike its YAML, the usual cause is an environment variable; this
prints the resolved value of every key beside its source (argument, env:VAR, file:PATH, default).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from faiss_operator.index import config as index_config
from faiss_operator.index import settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index-type", help=f"one of {', '.join(index_config.INDEX_TYPES)}")
    parser.add_argument("--config-file", help=f"YAML config file (default: ${settings.ENV_CONFIG_FILE})")
    parser.add_argument(
        "--set", dest="values", action="append", default=[], metavar="KEY=VALUE", help="an explicit config value"
    )
    parser.add_argument("--json", action="store_true", help="print JSON: index_type, config, sources")


def run(args: argparse.Namespace) -> int:
    try:
        explicit = dict(_parse_assignment(item) for item in args.values)
        resolved = settings.resolve_config(
            index_type=args.index_type, config=explicit or None, config_file=args.config_file
        )
    except ValueError as error:
        print(f"faiss-operator config: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(
            json.dumps(
                {
                    "index_type": resolved.index_type,
                    "config": resolved.config.model_dump(mode="json", exclude={"index_type"}),
                    "sources": dict(resolved.sources),
                },
                indent=2,
            )
        )
    else:
        print(resolved.describe())
    return 0


def _parse_assignment(item: str) -> tuple[str, Any]:
    key, separator, raw = item.partition("=")
    if not separator or not key.strip():
        raise index_config.ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set ef_search=128")
    text = raw.strip()
    try:
        return key.strip(), int(text)
    except ValueError:
        return key.strip(), text
