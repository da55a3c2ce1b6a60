"""`faiss-operator validate -f FILE...`: check FaissIndex resources offline, before `kubectl apply`.

For CI pipelines: each FaissIndex in the files (a directory is read with its subdirectories) (multi-document YAML or JSON, `kind: List` opened,
other kinds skipped) is checked against the CRD's schema, its CEL rules and the operator's models.
Exit status: 0 every FaissIndex is valid; 1 a problem was found (each printed on standard error,
naming the file, the document and the field), a file could not be read, or no FaissIndex was found;
2 bad usage, or the `validate` extra is not installed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

SUFFIXES = (".yaml", ".yml", ".json")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-f",
        "--filename",
        action="append",
        required=True,
        metavar="FILE",
        help="a file, a directory (its *.yaml, *.yml and *.json files, and those of its subdirectories), "
        "or - for standard input; repeat for more",
    )


def _inputs(names: list[str]) -> list[tuple[str, str | None, str | None]]:
    """(source name, text or None, error or None) for every input named."""
    found: list[tuple[str, str | None, str | None]] = []
    for name in names:
        if name == "-":
            found.append(("stdin", sys.stdin.read(), None))
            continue
        path = Path(name)
        paths = sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file()) if path.is_dir() else [path]
        for each in paths:
            try:
                found.append((str(each), each.read_text(encoding="utf-8"), None))
            except (OSError, UnicodeDecodeError) as error:
                found.append((str(each), None, f"cannot read: {getattr(error, 'strerror', None) or error}"))
    return found


def run(args: argparse.Namespace) -> int:
    try:
        from faiss_operator.api import validate
    except ImportError as error:
        print(
            f"faiss-operator validate needs the validate extra ({error.name} is missing): "
            "pip install 'faiss-operator[validate]'",
            file=sys.stderr,
        )
        return 2
    report = validate.Report()
    unreadable = 0
    inputs = _inputs(list(args.filename))
    for source, text, unread in inputs:
        if text is None:
            print(f"{source}: {unread}", file=sys.stderr)
            unreadable += 1
            continue
        report += validate.validate_text(text, source=source)
    for problem in report.problems:
        print(problem, file=sys.stderr)
    files = f"{len(inputs)} file{'s' if len(inputs) != 1 else ''}"
    skipped = f", {report.skipped} other object{'s' if report.skipped != 1 else ''} skipped" if report.skipped else ""
    summary = f"{report.checked} FaissIndex checked in {files}{skipped}"
    if report.problems or unreadable:
        count = len(report.problems) + unreadable
        print(f"{summary}: {count} problem{'s' if count != 1 else ''}")
        return 1
    if report.checked == 0:
        print(f"{summary}: no FaissIndex found")
        return 1
    print(f"{summary}: all valid")
    return 0
