"""The log lines of the pod programs (build, serve, download, delete-artifact): one `--log-level`
flag and one line format, so a user reads every pod's log the same way.

(server/supervisor.py keeps its own copy of the format: it runs with the standard library only.)
"""

from __future__ import annotations

import argparse
import logging

LEVELS = ("debug", "info", "warning", "error")
LINE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def add_log_level(parser: argparse.ArgumentParser) -> None:
    """Add `--log-level {debug,info,warning,error}` (default info) to `parser`."""
    parser.add_argument("--log-level", default="info", choices=LEVELS, help="least severe log lines written")


def configure(level: str) -> None:
    """Write log lines of `level` (one of LEVELS) and above to stderr in LINE_FORMAT."""
    logging.basicConfig(level=level.upper(), format=LINE_FORMAT)
