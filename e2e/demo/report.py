"""The seed guide's comparison table, from the statuses of this run's revisions."""

from __future__ import annotations

from collections.abc import Mapping

from e2e.stories.faissindex import Obj

COLUMNS = ("index type", "revision", "P99 latency", "memory", "build time", "recall@10", "vectors")


def _cell(value: object, unit: str = "", digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}{unit}"
    return f"{value}{unit}"


def comparison(status: Obj, revisions: Mapping[str, str]) -> str:
    """A text table, one row per index type in `revisions` (index type -> revision name), measured
    by each revision's build Job (status.revisions[].metrics)."""
    by_name = {r["name"]: r for r in status.get("revisions") or []}
    rows = [COLUMNS]
    for index_type, name in revisions.items():
        metrics = (by_name.get(name) or {}).get("metrics") or {}
        memory = metrics.get("memoryBytes")
        rows.append((index_type, name, _cell(metrics.get("p99LatencyMs"), " ms", 3),
                     _cell(memory / 2**20 if memory is not None else None, " MiB", 1),
                     _cell(metrics.get("buildSeconds"), " s", 1), _cell(float(metrics["recall"]) if metrics.get("recall") is not None else None, "", 3),
                     _cell(metrics.get("vectors"))))
    return _table(rows)


def transitions(durations: Mapping[str, float]) -> str:
    rows = [("transition", "took")] + [(name, f"{seconds:.0f} s") for name, seconds in durations.items()]
    return _table(rows)


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(cell.ljust(width) for cell, width in zip(row, widths)) for row in rows]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(lines)
