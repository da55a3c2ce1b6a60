"""Answers that are not what `serve` sends count as errors: a misbehaving HTTP server (aiohttp) on
loopback stands in for a pod that answers 200 with the wrong body."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import math
from collections.abc import AsyncIterator

import aiohttp.web
import orjson
import pytest

from faiss_operator.controller.decision import actions, analysis
from faiss_operator.controller.runtime import prober
from tests.controller.runtime.prober.conftest import CANDIDATE, DIMENSION, EVAL_QUERIES, STABLE
from tests.server.conftest import Server

NOW = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.timezone.utc)
BATCHES = math.ceil((EVAL_QUERIES - prober.DEFAULT_LATENCY_QUERIES) / 32)

SEARCH_ANSWERS = {
    "not JSON": lambda n: b"<html>busy</html>",
    "a list": lambda n: b"[]",
    "too few results": lambda n: orjson.dumps({"results": []}),
    "ids not a list": lambda n: orjson.dumps({"results": [{"ids": 5}] * n}),
    "no ids": lambda n: orjson.dumps({"results": [{"distances": []}] * n}),
}
SAMPLE_ANSWERS = {
    "not JSON": b"{",
    "fields missing": orjson.dumps({"k": 10, "revision": CANDIDATE}),
    "queries of the wrong size": orjson.dumps({
        "revision": CANDIDATE, "k": 10, "dimension": DIMENSION, "count": 2, "queriesFloat32": "AAAA",
        "groundTruthIds": [[1] * 10] * 2, "queryIds": None,
    }),
    "another revision's sample": orjson.dumps({"revision": "other", "k": 1, "dimension": 1, "count": 1}),
}


@contextlib.asynccontextmanager
async def misbehaving_pod(search_body: bytes | None, sample_body: bytes = b"{}") -> AsyncIterator[str]:
    async def search(request: aiohttp.web.Request) -> aiohttp.web.Response:
        rows = len(await request.read()) // (4 * DIMENSION)
        return aiohttp.web.Response(body=SEARCH_ANSWERS[search_body.decode()](rows) if search_body else b"{}",
                                    content_type="application/json")

    async def sample(request: aiohttp.web.Request) -> aiohttp.web.Response:
        return aiohttp.web.Response(body=sample_body, content_type="application/json")

    app = aiohttp.web.Application()
    app.router.add_post("/v1/search", search)
    app.router.add_get("/v1/evaluation-sample", sample)
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("answer", sorted(SEARCH_ANSWERS))
def test_malformed_search_answers_are_errors(pods: dict[str, Server], answer: str) -> None:
    async def scenario() -> analysis.Measurement:
        async with misbehaving_pod(answer.encode()) as address:
            return await prober.measure(
                actions.Analyze(candidate=CANDIDATE, stable=STABLE, step=2, artifact="a", k=10),
                candidates=[prober.PodTarget(CANDIDATE, pods["candidate-a"].url)],
                stables=[prober.PodTarget(STABLE, address)], clock=lambda: NOW,
            )

    measurement = asyncio.run(scenario())

    assert measurement.candidate.errors == 0
    # every batch, then the settling request; no single query follows a pod that failed it
    assert measurement.stable == analysis.Probe(samples=BATCHES + 1, errors=BATCHES + 1)


@pytest.mark.parametrize("answer", sorted(SAMPLE_ANSWERS))
def test_a_malformed_sample_is_an_error_and_the_next_candidate_pod_gives_it(pods: dict[str, Server], answer: str) -> None:
    async def scenario() -> analysis.Measurement:
        async with misbehaving_pod(b"not JSON", SAMPLE_ANSWERS[answer]) as address:
            return await prober.measure(
                actions.Analyze(candidate=CANDIDATE, stable=None, step=2, artifact="a", k=10),
                candidates=[prober.PodTarget(CANDIDATE, address), prober.PodTarget(CANDIDATE, pods["candidate-a"].url)],
                stables=[], clock=lambda: NOW,
            )

    measurement = asyncio.run(scenario())

    probe = measurement.candidate
    assert probe.errors == 1 + BATCHES + 1  # its sample, then its search answers
    assert probe.recall is not None and probe.recall > 0.95  # scored on the good pod's answers
    assert analysis.judge(measurement, analysis.Thresholds(None, None, None)).verdict == "Fail"
