"""The build's termination message: a compact JSON report that always fits the kubelet's limit.

Kubernetes keeps at most 4096 bytes of a container's termination message. The full report goes
to report.json in the artifact; this one keeps the numbers the controller puts in the status,
and drops the least needed fields (then shortens the error text) until it fits.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from faiss_operator.contract import build_report

logger = logging.getLogger(__name__)

TERMINATION_MESSAGE_LIMIT = build_report.TERMINATION_MESSAGE_LIMIT
DEFAULT_TERMINATION_LOG = build_report.TERMINATION_LOG
# Dropped in this order when the report is too long.
_OPTIONAL_FIELDS = ("config_sources", "effective_config", "config", "source", "artifact")


def compact(report: dict[str, Any], limit: int = TERMINATION_MESSAGE_LIMIT) -> str:
    """`report` as one line of JSON of at most `limit` bytes."""
    document = dict(report)
    for field in _OPTIONAL_FIELDS:
        if _size(document) <= limit:
            break
        document.pop(field, None)
    while _size(document) > limit and isinstance(document.get("error"), str) and document["error"]:
        error = document["error"]
        document["error"] = _shorten(error, len(error.encode()) - (_size(document) - limit) - 3)
    if _size(document) > limit:
        document = {"status": report.get("status"), "exit_code": report.get("exit_code"), "truncated": True}
    return _encode(document)


def _encode(document: dict[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"), sort_keys=True, ensure_ascii=False, default=str)


def _size(document: dict[str, Any]) -> int:
    return len(_encode(document).encode())


def _shorten(text: str, size: int) -> str:
    data = text.encode()
    if len(data) <= size:
        return text
    return data[: max(0, size - 3)].decode(errors="ignore") + "..." if size > 3 else ""


def default_termination_log(env: Mapping[str, str], path: Path | None = None) -> Path | None:
    """Where the report goes when --termination-log is not given: the kubelet's file inside a
    pod (KUBERNETES_SERVICE_HOST is set, and `path` is writable or can be created), else nowhere
    — run by hand, `build` writes no file outside its artifact. The controller passes
    `--termination-log /dev/termination-log` explicitly (controller/decision/programs.py)."""
    if not env.get("KUBERNETES_SERVICE_HOST"):
        return None
    path = Path(DEFAULT_TERMINATION_LOG) if path is None else path
    writable = os.access(path, os.W_OK) if path.exists() else os.access(path.parent, os.W_OK)
    return path if writable else None


def write_termination_log(path: Path, report: dict[str, Any]) -> None:
    """Best effort: a build must not fail because the termination log is not writable."""
    try:
        path.write_text(compact(report))
    except OSError as error:
        logger.warning("Failed to write the termination log: path=%s error=%s", path, error)
