"""controller/decision reads no clock: the time comes in as `now`, so a decision replays exactly.

.importlinter keeps I/O libraries out of the folder; a clock is in the standard library and is
read by a call, not an import, so this test reads every file of the folder, those added later
included, and names each place that asks the machine for the time.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from faiss_operator.controller import decision

DECISION = Path(decision.__file__).resolve().parent

# Attribute chains that read the machine's clock (or sleep on it).
CLOCK_READS = frozenset(
    {
        "datetime.now",
        "datetime.utcnow",
        "datetime.today",
        "date.today",
        "datetime.datetime.now",
        "datetime.datetime.utcnow",
        "datetime.datetime.today",
        "datetime.date.today",
        "time.time",
        "time.time_ns",
        "time.monotonic",
        "time.monotonic_ns",
        "time.perf_counter",
        "time.perf_counter_ns",
        "time.sleep",
        "time.localtime",
        "time.gmtime",
        "loop.time",
    }
)
# Modules whose only use is a clock or waiting on one.
CLOCK_MODULES = frozenset({"time", "asyncio", "sched"})


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return None if inner is None else f"{inner}.{node.attr}"
    return None


def clock_reads(source: str, filename: str) -> list[str]:
    """Every place in `source` that reads a clock, as `file:line: what`."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            found += [f"{filename}:{node.lineno}: import {a.name}" for a in node.names if a.name in CLOCK_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module in CLOCK_MODULES:
            found.append(f"{filename}:{node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.ImportFrom) and node.module == "datetime":
            # `from datetime import datetime` hides `datetime.now` behind a short name: fine as
            # long as the calls below are caught, which they are by the same attribute chains.
            continue
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name is not None and name in CLOCK_READS:
                found.append(f"{filename}:{node.lineno}: {name}()")
    return found


def test_the_folder_holds_the_decision_modules() -> None:
    names = {p.stem for p in DECISION.glob("*.py")}
    assert {"decide", "rollout", "state", "lifecycle", "admin"} <= names


def test_no_file_of_decision_reads_a_clock() -> None:
    found = [
        hit
        for path in sorted(DECISION.rglob("*.py"))
        for hit in clock_reads(path.read_text(), str(path.relative_to(DECISION.parent)))
    ]
    assert found == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import datetime\nnow = datetime.datetime.now()\n", ["m.py:2: datetime.datetime.now()"]),
        ("from datetime import datetime\nx = datetime.now(tz=None)\n", ["m.py:2: datetime.now()"]),
        ("import time\n", ["m.py:1: import time"]),
        ("from time import monotonic\n", ["m.py:1: from time import ..."]),
        ("import asyncio\n", ["m.py:1: import asyncio"]),
        ("import datetime\nlater = now + datetime.timedelta(seconds=5)\n", []),
    ],
)
def test_the_check_sees_a_clock_read(source: str, expected: list[str]) -> None:
    assert clock_reads(source, "m.py") == expected
