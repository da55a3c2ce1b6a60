"""`faiss-operator crd`: print or write the FaissIndex CRD generated from the models."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from faiss_operator.api import crd

DEFAULT_PATH = "crds/faissindexes.faiss.dev.yaml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", default=DEFAULT_PATH, help=f"file to write, or - for standard output (default: {DEFAULT_PATH})"
    )
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if the file differs from the models"
    )


def run(args: argparse.Namespace) -> int:
    text = crd.render()
    if args.out == "-":
        sys.stdout.write(text)
        return 0
    path = Path(args.out)
    if args.check:
        current = path.read_text() if path.exists() else None
        if current != text:
            print(f"{path} is out of date; run: faiss-operator crd --out {path}", file=sys.stderr)
            return 1
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(f"Wrote {path}", file=sys.stderr)
    return 0
