"""Micro-batching of concurrent single queries onto a few search threads.

An asyncio server answers many clients on one thread, but a FAISS search must leave the event
loop (it would block every other request) and one query at a time would use one core. Requests
that arrive while the search threads are busy are therefore queued, and each free thread takes
every queued query with the same `k` and search parameters as one batch. No request ever waits
for a batch to fill: at concurrency 1 a query is dispatched alone the moment it arrives, so the
latency is that of a single search; under load the batches grow by themselves. When nothing is
in flight, queued or arriving alongside, a single query is searched right on the event loop's
thread (never under load, where that would serialize every search on one core): handing it to
a worker thread and back costs two thread wake-ups, which on a busy 2-core machine cost as much
CPU as the search itself, and an idle server has nothing else to do meanwhile. FAISS releases
the GIL while it searches, so the threads run on separate cores; each thread searches with one
OpenMP thread, so the parallelism is exactly the number of workers and nothing oversubscribes.

With `workers=0` nothing leaves the event loop's thread: every query that arrives in one turn of
the loop is queued, and once that turn's requests have all been read, one callback searches each
group as one batch right there. That is the mode of `serve --workers N` (one process per core):
the process has one core to use, and handing a query to another thread and back costs that core
more than the search it saves from blocking (docs/benchmarks.md, "Benchmarks: serving").
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import dataclasses
import functools
from collections.abc import Callable, Hashable

import numpy as np
import numpy.typing as npt

Float32Array = npt.NDArray[np.float32]
Int64Array = npt.NDArray[np.int64]
SearchFunction = Callable[[Float32Array, int, Hashable], tuple[Float32Array, Int64Array]]
"""(queries (n, d) float32, k, params key) -> (distances (n, k), positions (n, k))."""

DEFAULT_MAX_BATCH = 64


@dataclasses.dataclass
class _Pending:
    vectors: Float32Array
    future: asyncio.Future[tuple[Float32Array, Int64Array]]


class MicroBatcher:
    """Runs `search` on batches of queued queries, at most `workers` batches at once."""

    def __init__(
        self,
        search: SearchFunction,
        *,
        workers: int = 2,
        max_batch: int = DEFAULT_MAX_BATCH,
        thread_initializer: Callable[[], None] | None = None,
        inline_when_idle: bool = True,
    ) -> None:
        if workers < 0:
            raise ValueError(f"workers must be >= 0 (got {workers})")
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1 (got {max_batch})")
        self._search = search
        self._workers = workers
        self._max_batch = max_batch
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="search", initializer=thread_initializer
        ) if workers else None
        self._flush_scheduled = False
        self._queues: collections.OrderedDict[tuple[int, Hashable], collections.deque[_Pending]] = (
            collections.OrderedDict()
        )
        self._in_flight = 0
        self._queued_rows = 0
        self._inline_when_idle = inline_when_idle
        self._inline_ready = thread_initializer is None
        self._thread_initializer = thread_initializer

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def queued(self) -> int:
        return self._queued_rows

    def submit(self, vectors: Float32Array, k: int, params: Hashable = None) -> asyncio.Future[tuple[Float32Array, Int64Array]]:
        """Queue `vectors` (n, d) for this turn of the event loop's batch; the future gets this
        request's own rows of the results (distances (n, k), positions (n, k)) or the batch's error.
        Call it on the event loop's thread; no coroutine is needed (the HTTP protocol calls it
        from a parser callback)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[Float32Array, Int64Array]] = loop.create_future()
        key = (k, params)
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = collections.deque()
        queue.append(_Pending(vectors, future))
        self._queued_rows += len(vectors)
        if not self._flush_scheduled:
            # call_soon runs after the callbacks already due in this turn: every request read
            # alongside this one has queued its query by then.
            self._flush_scheduled = True
            loop.call_soon(self._flush, loop)
        return future

    async def search(self, vectors: Float32Array, k: int, params: Hashable = None) -> tuple[Float32Array, Int64Array]:
        """Search `vectors` (n, d); returns this request's own rows of the batch's results."""
        return await self.submit(vectors, k, params)

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        self._flush_scheduled = False
        if self._executor is None:
            self._search_queued_on_loop()
        elif self._inline_when_idle and self._in_flight == 0 and self._queued_rows == 1:
            # One query arrived alone in this turn and nothing is running: a thread hand-off
            # would cost more than the search.
            self._search_queued_on_loop()
        else:
            self._dispatch(loop)

    def _search_queued_on_loop(self) -> None:
        while self._queues:
            taken = self._next_batch()
            if taken is None:
                continue
            (k, params), batch, stacked = taken
            try:
                result = self._search_inline(stacked, k, params)
            except Exception as error:  # handed to each request, which answers it as its own
                self._fail(batch, error)
                continue
            self._deliver(batch, result)

    def _next_batch(self) -> tuple[tuple[int, Hashable], list[_Pending], Float32Array] | None:
        """The first (k, params) group's next batch and its rows stacked (n, d); the group goes to
        the back of the line when rows are left. None when what was taken had all been cancelled."""
        key, queue = next(iter(self._queues.items()))
        batch = self._take(queue)
        if not queue:
            del self._queues[key]
        else:
            self._queues.move_to_end(key)  # other (k, params) groups get the next turn
        if not batch:
            return None
        stacked = batch[0].vectors if len(batch) == 1 else np.concatenate([p.vectors for p in batch])
        return key, batch, stacked

    @staticmethod
    def _fail(batch: list[_Pending], error: BaseException) -> None:
        for item in batch:
            if not item.future.done():
                item.future.set_exception(error)

    def _take(self, queue: collections.deque[_Pending]) -> list[_Pending]:
        """Up to max_batch rows from the head of `queue` (always at least one request), skipping cancelled ones."""
        batch: list[_Pending] = []
        rows = 0
        while queue and (not batch or rows + len(queue[0].vectors) <= self._max_batch):
            item = queue.popleft()
            self._queued_rows -= len(item.vectors)
            if item.future.cancelled():
                continue
            batch.append(item)
            rows += len(item.vectors)
        return batch

    @staticmethod
    def _deliver(batch: list[_Pending], result: tuple[Float32Array, Int64Array]) -> None:
        distances, positions = result
        start = 0
        for item in batch:
            end = start + len(item.vectors)
            if not item.future.done():
                item.future.set_result((distances[start:end], positions[start:end]))
            start = end

    def _search_inline(self, vectors: Float32Array, k: int, params: Hashable) -> tuple[Float32Array, Int64Array]:
        if not self._inline_ready:
            assert self._thread_initializer is not None
            self._thread_initializer()  # the loop's thread searches like a worker thread
            self._inline_ready = True
        self._in_flight += 1
        try:
            return self._search(vectors, k, params)
        finally:
            self._in_flight -= 1

    def _dispatch(self, loop: asyncio.AbstractEventLoop) -> None:
        while self._in_flight < self._workers and self._queues:
            taken = self._next_batch()
            if taken is None:
                continue
            (k, params), batch, stacked = taken
            self._in_flight += 1
            assert self._executor is not None
            work = loop.run_in_executor(self._executor, self._search, stacked, k, params)
            work.add_done_callback(functools.partial(self._finish, loop, batch))

    def _finish(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[_Pending],
        done: asyncio.Future[tuple[Float32Array, Int64Array]],
    ) -> None:
        self._in_flight -= 1
        error = done.exception()
        if error is not None:
            self._fail(batch, error)
        else:
            self._deliver(batch, done.result())
        self._dispatch(loop)

    def close(self) -> None:
        """Waits for running batches; call once no new searches can arrive."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
