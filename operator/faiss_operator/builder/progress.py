"""The build's progress lines: `Progress: phase=<phase> percent=<0-100> key=value ...`.

The format is what users (and `kubectl logs` greps) read; the controller does not parse it.
Every line also says the anonymous memory held now and at its peak so far (`anon_mib`,
`peak_anon_mib`), sampled at that moment as well as by the background sampler, so that a
build killed for memory leaves in its log how far it got and what it held.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from faiss_operator.builder import anon_memory

logger = logging.getLogger("faiss_operator.builder.pipeline")
MIB = 1 << 20


# Called with {"phase", "percent", "peak_anon_bytes"} at every line: the build Job keeps its
# termination log current with it, so that a build killed for memory says where and at how much.
OnLine = Callable[[dict[str, Any]], None]


class Progress:
    def __init__(self, peak: anon_memory.PeakAnonMemory | None = None, *, on_line: OnLine | None = None) -> None:
        self._peak = peak
        self._on_line = on_line

    def __call__(self, phase: str, percent: float, **fields: Any) -> None:
        peak: int | None = None
        if self._peak is not None:
            now = anon_memory.rss_anon_bytes()
            peak = self._peak.sample()
            if now is not None and peak is not None:
                fields = {**fields, "anon_mib": now // MIB, "peak_anon_mib": peak // MIB}
        extra = "".join(f" {key}={value}" for key, value in fields.items())
        logger.info("Progress: phase=%s percent=%.0f%s", phase, percent, extra)
        if self._on_line is not None:
            self._on_line({"phase": phase, "percent": round(percent), "peak_anon_bytes": peak})

    def rows(self, phase: str, done: int, total: int, **fields: Any) -> None:
        """A line for `done` of `total` rows: percent and `vectors=done/total`."""
        self(phase, 100 * done / total if total else 100, vectors=f"{done}/{total}", **fields)
