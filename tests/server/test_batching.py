"""The micro-batcher: queued queries share a batch, each caller gets its own rows back."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Hashable

import numpy as np
import pytest

from faiss_operator.server.batching import MicroBatcher


class _Recorder:
    """Search function that answers position = 1000*k + first coordinate, and waits on a gate."""

    def __init__(self) -> None:
        self.batches: list[tuple[int, int, Hashable]] = []
        self.gate = threading.Event()

    def __call__(self, queries: np.ndarray, k: int, params: Hashable) -> tuple[np.ndarray, np.ndarray]:
        self.gate.wait(timeout=30)
        self.batches.append((len(queries), k, params))
        positions = (1000 * k + queries[:, :1].astype(np.int64)).repeat(k, axis=1)
        return queries[:, :1].repeat(k, axis=1).astype(np.float32), positions


def _query(value: float, rows: int = 1) -> np.ndarray:
    return np.full((rows, 4), value, dtype=np.float32)


async def _wait_until(condition: object, deadline_s: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_s
    while not condition():  # type: ignore[operator]
        assert loop.time() < deadline
        await asyncio.sleep(0.001)


def test_queries_queued_behind_a_busy_worker_share_one_batch() -> None:
    async def scenario() -> None:
        search = _Recorder()
        batcher = MicroBatcher(search, workers=1, max_batch=64, inline_when_idle=False)
        first = asyncio.ensure_future(batcher.search(_query(1), 2))
        await _wait_until(lambda: batcher.in_flight == 1)
        rest = [asyncio.ensure_future(batcher.search(_query(v, rows=2), 2)) for v in range(2, 7)]
        await _wait_until(lambda: batcher.queued == 10)
        search.gate.set()
        answers = await asyncio.gather(first, *rest)
        assert search.batches == [(1, 2, None), (10, 2, None)]
        for value, (_, positions) in zip(range(1, 7), answers):
            assert np.all(positions == 2000 + value)
        assert [len(p) for _, p in answers] == [1, 2, 2, 2, 2, 2]
        batcher.close()

    asyncio.run(scenario())


def test_different_k_or_params_never_share_a_batch_and_max_batch_splits() -> None:
    async def scenario() -> None:
        search = _Recorder()
        batcher = MicroBatcher(search, workers=1, max_batch=3, inline_when_idle=False)
        blocker = asyncio.ensure_future(batcher.search(_query(0), 1))
        await _wait_until(lambda: batcher.in_flight == 1)
        calls = [batcher.search(_query(1), 1), batcher.search(_query(2), 5), batcher.search(_query(3), 1, (("ef_search", 8),))]
        calls += [batcher.search(_query(v), 1) for v in range(4, 8)]
        pending = [asyncio.ensure_future(c) for c in calls]
        await _wait_until(lambda: batcher.queued == 7)
        search.gate.set()
        await asyncio.gather(blocker, *pending)
        assert sorted(search.batches[1:], key=str) == sorted(
            [(3, 1, None), (2, 1, None), (1, 5, None), (1, 1, (("ef_search", 8),))], key=str
        )
        batcher.close()

    asyncio.run(scenario())


def test_a_failing_search_fails_only_its_batch() -> None:
    async def scenario() -> None:
        def search(queries: np.ndarray, k: int, params: Hashable) -> tuple[np.ndarray, np.ndarray]:
            if k == 3:
                raise RuntimeError("boom")
            return np.zeros((len(queries), k), np.float32), np.zeros((len(queries), k), np.int64)

        batcher = MicroBatcher(search, workers=2)
        with pytest.raises(RuntimeError, match="boom"):
            await batcher.search(_query(1), 3)
        distances, _ = await batcher.search(_query(1), 2)
        assert distances.shape == (1, 2)
        batcher.close()

    asyncio.run(scenario())


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="workers"):
        MicroBatcher(lambda q, k, p: (q, q.astype(np.int64)), workers=-1)  # type: ignore[arg-type,return-value]


def test_an_idle_batcher_searches_a_single_query_on_the_calling_thread() -> None:
    threads: list[str] = []
    initialized: list[str] = []

    def search(queries: np.ndarray, k: int, params: Hashable) -> tuple[np.ndarray, np.ndarray]:
        threads.append(threading.current_thread().name)
        return np.zeros((len(queries), k), np.float32), np.zeros((len(queries), k), np.int64)

    async def scenario() -> None:
        batcher = MicroBatcher(search, workers=2, thread_initializer=lambda: initialized.append(threading.current_thread().name))
        await batcher.search(_query(1), 2)  # idle, one row: inline
        await batcher.search(_query(1, rows=2), 2)  # two rows: a worker thread
        batcher.close()

    asyncio.run(scenario())
    main = threading.main_thread().name
    assert threads[0] == main and threads[1].startswith("search")
    assert initialized[0] == main


def test_queries_arriving_together_go_to_the_worker_threads_not_inline() -> None:
    threads: list[str] = []

    def search(queries: np.ndarray, k: int, params: Hashable) -> tuple[np.ndarray, np.ndarray]:
        threads.append(threading.current_thread().name)
        return np.zeros((len(queries), k), np.float32), np.zeros((len(queries), k), np.int64)

    async def scenario() -> None:
        batcher = MicroBatcher(search, workers=2)
        await asyncio.gather(*(batcher.search(_query(v), 2) for v in range(8)))
        batcher.close()

    asyncio.run(scenario())
    assert threads and all(name.startswith("search") for name in threads)


def test_on_the_loop_queries_of_one_turn_are_one_batch_per_group_each_caller_gets_its_rows() -> None:
    recorder = _Recorder()
    recorder.gate.set()
    threads: list[str] = []
    initialized: list[str] = []

    def search(queries: np.ndarray, k: int, params: Hashable) -> tuple[np.ndarray, np.ndarray]:
        threads.append(threading.current_thread().name)
        return recorder(queries, k, params)

    async def scenario() -> list[tuple[np.ndarray, np.ndarray]]:
        batcher = MicroBatcher(search, workers=0, max_batch=64, thread_initializer=lambda: initialized.append("yes"))
        calls = [batcher.search(_query(v), 2) for v in range(5)]
        calls += [batcher.search(_query(7, rows=2), 3, (("ef_search", 16),))]
        calls += [batcher.search(_query(9), 2)]
        answers = await asyncio.gather(*calls)
        assert batcher.queued == 0 and batcher.in_flight == 0
        later = await batcher.search(_query(11), 2)  # a later turn: a batch of its own
        batcher.close()
        return [*answers, later]

    answers = asyncio.run(scenario())
    assert recorder.batches == [(6, 2, None), (2, 3, (("ef_search", 16),)), (1, 2, None)]
    assert set(threads) == {threading.main_thread().name}
    assert initialized == ["yes"]  # the loop's thread is set up once, like a search thread
    positions = [a[1] for a in answers]
    assert [p.tolist() for p in positions] == [
        [[2000, 2000]], [[2001, 2001]], [[2002, 2002]], [[2003, 2003]], [[2004, 2004]],
        [[3007, 3007, 3007], [3007, 3007, 3007]], [[2009, 2009]], [[2011, 2011]],
    ]


def test_on_the_loop_a_batch_over_max_batch_is_split_and_an_error_reaches_only_its_batch() -> None:
    batches: list[tuple[int, int]] = []

    def search(queries: np.ndarray, k: int, params: Hashable) -> tuple[np.ndarray, np.ndarray]:
        batches.append((k, len(queries)))
        if k == 5:
            raise RuntimeError("boom")
        return np.zeros((len(queries), k), np.float32), np.zeros((len(queries), k), np.int64)

    async def scenario() -> list[object]:
        batcher = MicroBatcher(search, workers=0, max_batch=3)
        calls = [batcher.search(_query(v), 2) for v in range(7)] + [batcher.search(_query(1), 5)]
        return await asyncio.gather(*calls, return_exceptions=True)

    answers = asyncio.run(scenario())
    # Each (k, params) group in batches of at most max_batch; groups take turns.
    assert [n for k, n in batches if k == 2] == [3, 3, 1] and [n for k, n in batches if k == 5] == [1]
    assert all(isinstance(a, tuple) for a in answers[:7])
    assert isinstance(answers[7], RuntimeError) and str(answers[7]) == "boom"
