"""`faiss-operator crd`: print the FaissIndex CRD generated from the models, or write it to a file.

Standard output is the default, so `faiss-operator crd | kubectl apply -f -` works from any
directory; `--out FILE` writes a file (the repository keeps `crds/faissindexes.faiss.dev.yaml`),
and `--check --out FILE` says whether that file is stale.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from faiss_operator.api import crd

REPOSITORY_PATH = "crds/faissindexes.faiss.dev.yaml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", default="-", help=f"file to write (the repository's is {REPOSITORY_PATH}); default: - (standard output)"
    )
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if the --out file differs from the models"
    )


def run(args: argparse.Namespace) -> int:
    text = crd.render()
    if args.check and args.out == "-":
        print(f"faiss-operator crd: --check needs --out FILE (e.g. --out {REPOSITORY_PATH})", file=sys.stderr)
        return 2
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
