"""A lean HTTP/1.1 load generator for the serving benchmarks.

The client shares the machine's cores with the server it measures, so it must cost as little
CPU per request as possible: requests are encoded once up front, each connection is a raw
keep-alive asyncio stream (uvloop when installed), and a response is read by its Content-Length
without parsing its body. It runs in its own process so that its GIL is not the server's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import multiprocessing
import time
from collections.abc import Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class LoadResult:
    concurrency: int
    requests: int
    seconds: float
    latencies_ms: list[float]
    statuses: dict[int, int]
    client_cpu_seconds: float  # the generator's own CPU over the measured requests

    @property
    def qps(self) -> float:
        return self.requests / self.seconds

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(np.asarray(self.latencies_ms), q))


def encode_post(host: str, port: int, path: str, body: bytes, content_type: str = "application/json") -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode("ascii") + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
            break
    if length:
        await reader.readexactly(length)
    return status


async def _run(host: str, port: int, requests: Sequence[bytes], concurrency: int, total: int, warmup: int) -> LoadResult:
    connections = [await asyncio.open_connection(host, port) for _ in range(concurrency)]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    counter = 0
    clock = time.perf_counter

    async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, budget: int, record: bool) -> None:
        nonlocal counter
        for _ in range(budget):
            payload = requests[counter % len(requests)]
            counter += 1
            started = clock()
            writer.write(payload)
            status = await _read_response(reader)
            if record:
                latencies.append((clock() - started) * 1000.0)
                statuses[status] = statuses.get(status, 0) + 1

    per_worker_warmup = max(1, warmup // concurrency)
    await asyncio.gather(*(worker(r, w, per_worker_warmup, False) for r, w in connections))
    per_worker = max(1, total // concurrency)
    started, cpu_started = clock(), time.process_time()
    await asyncio.gather(*(worker(r, w, per_worker, True) for r, w in connections))
    seconds, cpu = clock() - started, time.process_time() - cpu_started
    for _, writer in connections:
        writer.close()
    return LoadResult(concurrency, per_worker * concurrency, seconds, latencies, statuses, cpu)


def _child(host: str, port: int, requests: Sequence[bytes], concurrency: int, total: int, warmup: int, out: "multiprocessing.queues.Queue[LoadResult]") -> None:  # type: ignore[name-defined]
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    out.put(asyncio.run(_run(host, port, requests, concurrency, total, warmup)))


def run_load(host: str, port: int, requests: Sequence[bytes], *, concurrency: int, total: int, warmup: int = 200) -> LoadResult:
    """Send `total` requests over `concurrency` keep-alive connections from a separate process."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(host, port, list(requests), concurrency, total, warmup, queue))
    process.start()
    result: LoadResult = queue.get(timeout=900)
    process.join(timeout=30)
    return result
