"""The memory a serving pod requests when serving.resources sets none: computed from what the
revision's build measured, so that the scheduler places the pod on a node where it fits.

    request = index bytes                         (index.faiss, memory-mapped once per pod)
            + FIRST_PROCESS + FURTHER_PROCESS x (workers - 1)
            + SUPERVISOR                          (only with more than one worker)
            + workers x vectors x ID_BYTES        (each process's id map, Python objects)

rounded up to a whole MiB. The constants are the PSS measured in docs/benchmarks.md ("Memory",
runs D/E and the table after them): one process serves with ~65 MiB over its index; each further
process adds 15-20 MiB (20 taken); the supervisor of several processes 6 MiB; the id map takes
~38 MiB per million integer ids in each process (40 bytes a vector taken). Metadata is not in the
build's report, so it is not counted: an index with large metadata should set
serving.resources.requests.memory. The formula is also in docs/faissindex.md.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from faiss_operator.api import status as api_status

MIB = 1024 * 1024
FIRST_PROCESS_BYTES = 65 * MIB
FURTHER_PROCESS_BYTES = 20 * MIB
SUPERVISOR_BYTES = 6 * MIB
ID_BYTES = 40


@dataclasses.dataclass(frozen=True)
class Measured:
    """What a revision's build measured: the saved index's size and the vectors in it."""

    index_bytes: int
    vectors: int

    @classmethod
    def of(cls, metrics: api_status.RevisionMetrics | None) -> Measured | None:
        if metrics is None or metrics.memory_bytes is None or metrics.vectors is None:
            return None
        return cls(index_bytes=metrics.memory_bytes, vectors=metrics.vectors)


def request_bytes(measured: Measured, *, workers: int) -> int:
    """The formula above, in bytes rounded up to a whole MiB."""
    workers = max(1, workers)
    processes = FIRST_PROCESS_BYTES + FURTHER_PROCESS_BYTES * (workers - 1)
    supervisor = SUPERVISOR_BYTES if workers > 1 else 0
    total = measured.index_bytes + processes + supervisor + workers * measured.vectors * ID_BYTES
    return math.ceil(total / MIB) * MIB


def quantity(size: int) -> str:
    """A byte count as a Kubernetes quantity in MiB (`size` is a whole number of MiB)."""
    return f"{size // MIB}Mi"


def with_memory_request(
    resources: Mapping[str, Any], measured: Measured | None, *, workers: int
) -> dict[str, Any]:
    """`resources` with requests.memory from the formula when neither requests nor limits set a
    memory (a limit alone makes Kubernetes request the same), and the build measured the index."""
    out = {kind: dict(values) for kind, values in resources.items()}
    if measured is None or any("memory" in (out.get(kind) or {}) for kind in ("requests", "limits")):
        return out
    out["requests"] = {**(out.get("requests") or {}), "memory": quantity(request_bytes(measured, workers=workers))}
    return out
