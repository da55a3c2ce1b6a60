"""Live analysis: what users would get from the candidate revision's pods, measured over HTTP.

The build measured recall and latency on its own machine; before (and during) a rollout the
operator measures what the serving pods answer. At an `Analyze` action the Kopf layer calls
`measure`, which

1. fetches the candidate's stored evaluation sample (queries, exact top-k ids, the rows the
   queries were drawn from) from one candidate pod: `GET /v1/evaluation-sample?encoding=float32`;
2. sends every query of the sample to every candidate pod and every stable pod, by pod address:
   the last `latency_queries` of them one per request (their timings are the latency figures),
   the rest in batches of `batch_size` (the server's float32 form) for recall;
3. scores the answers per revision against the stored ground truth: searching k + 1 deep and
   leaving each query's own row out when the queries came from the input, exactly as the build
   did (index.evaluation.without_own), so live recall and build recall mean the same thing.

Latency is what the client saw for one single-query request, send to last byte (connection set
up beforehand by an untimed request), over all pods of the revision: one query per request is
how the build measured it and how most users search, and a batch's time divided by its size
would hide the per-request overhead that dominates a p99. Recall uses batches because they are
cheaper; the server answers a batch exactly as it answers the same queries one by one.

Every request carries `X-Faiss-Probe: 1` so the pods count it under `source="probe"`. The whole
measurement ends by `timeout_seconds`; at most `concurrency` requests are in flight, and at most
`concurrency / pods` (at least 1) to one pod, so a pod that hangs only holds its own share.
Pod and network trouble never raises: a non-2xx answer, a timeout, a refused connection, a
malformed answer or one from another revision (a reused pod IP) counts in `Probe.errors`;
`Probe.samples` counts the requests sent to the revision's pods (including the sample fetch), so
`judge` says Fail when any failed and Inconclusive when none could be sent or the candidate has
no stored sample. Requests never sent because time ran out count neither way.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import datetime
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp
import numpy as np
import numpy.typing as npt
import orjson

from faiss_operator.contract import serving_http
from faiss_operator.controller.decision import actions as plan_actions
from faiss_operator.controller.decision import analysis
from faiss_operator.index import evaluation

logger = logging.getLogger(__name__)

# Enough queries for a recall figure good to about +-0.01 and a p99 from 100 timings per pod, in
# well under the default 30 s on a few pods; the sample the build stored may be larger.
DEFAULT_SAMPLE_QUERIES = 1000
DEFAULT_LATENCY_QUERIES = 100
SAMPLE_LIMIT = 10_000  # the most queries one /v1/evaluation-sample answer holds
_ERRORS_LOGGED = 3


@dataclasses.dataclass(frozen=True)
class PodTarget:
    revision: str  # the faiss.dev/revision label of the pod
    address: str  # "http://<podIP>:<port>"


@dataclasses.dataclass(frozen=True)
class Sample:
    """The candidate's stored query sample, as fetched from one of its pods."""

    revision: str
    k: int  # columns of the ground truth
    queries: npt.NDArray[np.float32]  # (n, dimension)
    truth: list[list[Any]]  # (n, k) external ids
    own_ids: list[Any] | None  # (n,) the queries' own ids, to leave out; None for held-out queries


class _ProbeError(Exception):
    """One failed request: what a pod did wrong, for the log."""


@dataclasses.dataclass
class _Tally:
    """What one revision's pods answered so far."""

    requests: int = 0
    errors: int = 0
    hits: int = 0
    answered: int = 0
    latencies: list[float] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)

    def failed(self, target: PodTarget, problem: str) -> None:
        self.errors += 1
        if len(self.problems) < _ERRORS_LOGGED:
            self.problems.append(f"{target.address}: {problem}")

    def probe(self, k: int) -> analysis.Probe:
        latency = evaluation.percentiles_ms(self.latencies) if self.latencies else None
        return analysis.Probe(
            samples=self.requests,
            errors=self.errors,
            recall=self.hits / (k * self.answered) if self.answered and k else None,
            p99_latency_ms=latency.p99_ms if latency else None,
            p50_latency_ms=latency.p50_ms if latency else None,
        )


@dataclasses.dataclass(frozen=True)
class _Run:
    """What every request of one measurement shares."""

    session: aiohttp.ClientSession
    deadline: float  # on the event loop's clock
    slots: asyncio.Semaphore  # `concurrency`, over all pods

    def remaining(self) -> float:
        return self.deadline - asyncio.get_running_loop().time()


async def measure(
    action: plan_actions.Analyze,
    *,
    candidates: Sequence[PodTarget],
    stables: Sequence[PodTarget],
    clock: Callable[[], datetime.datetime],
    timeout_seconds: float = 30.0,
    concurrency: int = 4,
    batch_size: int = 32,
    sample_queries: int = DEFAULT_SAMPLE_QUERIES,
    latency_queries: int = DEFAULT_LATENCY_QUERIES,
) -> analysis.Measurement:
    """Probe `candidates` (ready pods of action.candidate) and `stables` (of action.stable) with the
    candidate's stored sample; returns within `timeout_seconds` (plus the time to close sockets).

    recall@k uses k = min(action.k, the sample's k). `sample_queries` caps the queries used (the
    first ones of the stored sample, which the build drew at random); `latency_queries` of them go
    one per request. `stable` is None in the result when action.stable is None. Raises ValueError
    only for arguments out of range (timeout_seconds <= 0, concurrency, batch_size or
    sample_queries < 1, latency_queries < 0); never for pod, network or HTTP trouble.
    """
    if timeout_seconds <= 0 or concurrency < 1 or batch_size < 1 or sample_queries < 1 or latency_queries < 0:
        raise ValueError(
            f"measure: timeout_seconds must be > 0, concurrency, batch_size and sample_queries >= 1, "
            f"latency_queries >= 0; got {timeout_seconds}, {concurrency}, {batch_size}, {sample_queries}, "
            f"{latency_queries}"
        )
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    candidate, stable = _Tally(), _Tally()
    k = max(1, action.k)
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=0)
    async with aiohttp.ClientSession(headers={serving_http.PROBE_HEADER: serving_http.PROBE_VALUE}, connector=connector) as session:
        run = _Run(session=session, deadline=loop.time() + timeout_seconds, slots=asyncio.Semaphore(concurrency))
        sample = await _fetch_sample(run, action, candidates, candidate, sample_queries)
        if sample is not None:
            k = min(k, sample.k)
            pods = [(target, candidate) for target in candidates]
            if action.stable is not None:
                pods += [(target, stable) for target in stables]
            per_pod = max(1, concurrency // max(1, len(pods)))
            await asyncio.gather(*(
                _probe_pod(run, target, tally, sample, k, batch_size=batch_size, latency_queries=latency_queries,
                           in_flight=per_pod)
                for target, tally in pods
            ))
    measurement = analysis.Measurement(
        revision=action.candidate,
        step=action.step,
        taken_at=clock(),
        candidate=candidate.probe(k),
        stable=None if action.stable is None else stable.probe(k),
    )
    _log(action, measurement, candidate, stable, time.monotonic() - started)
    return measurement


async def _fetch_sample(
    run: _Run, action: plan_actions.Analyze, candidates: Sequence[PodTarget], tally: _Tally, limit: int
) -> Sample | None:
    """The sample from the first candidate pod that gives it; None when none did or there is none.

    Each attempt may take its share of the remaining time, so one hung pod leaves time for the
    next. A 404 (the artifact stores no sample) ends the search at once: the pods serve one artifact.
    """
    for number, target in enumerate(candidates):
        share = run.remaining() / (len(candidates) - number)
        if share <= 0:
            return None
        tally.requests += 1
        url = f"{target.address}{serving_http.EVALUATION_SAMPLE_PATH}?encoding=float32&limit={min(limit, SAMPLE_LIMIT)}"
        try:
            async with asyncio.timeout(share):
                async with run.slots, run.session.get(url) as response:
                    body = await response.read()
                    if response.status == 404:
                        tally.requests -= 1  # not a failure of the pod: there is nothing to fetch
                        logger.warning("Found no evaluation sample: revision=%s pod=%s answer=%s",
                                       action.candidate, target.address, body[:300].decode(errors="replace"))
                        return None
                    if response.status != 200:
                        raise _ProbeError(f"{serving_http.EVALUATION_SAMPLE_PATH} answered {response.status}: {body[:200]!r}")
            return await asyncio.to_thread(_parse_sample, body, target, action.candidate)  # megabytes: off the loop
        except _ProbeError as error:
            tally.failed(target, str(error))
        except TimeoutError:  # before OSError, of which it is a subclass
            tally.failed(target, f"{serving_http.EVALUATION_SAMPLE_PATH}: no answer within {share:.1f} s")
        except (aiohttp.ClientError, OSError, ValueError) as error:
            tally.failed(target, f"{serving_http.EVALUATION_SAMPLE_PATH}: {type(error).__name__}: {error}")
    return None


def _parse_sample(body: bytes, target: PodTarget, revision: str) -> Sample:
    """Raises _ProbeError when the answer is not the sample of `revision` in the documented shape."""
    try:
        document = _json_object(body, serving_http.EVALUATION_SAMPLE_PATH)
        k, dimension, count = document["k"], document["dimension"], document["count"]
        if not all(isinstance(value, int) and not isinstance(value, bool) for value in (k, dimension, count)):
            raise _ProbeError(f"{serving_http.EVALUATION_SAMPLE_PATH}: k, dimension and count must be integers")
        if document.get("revision") != revision:
            raise _ProbeError(f"{serving_http.EVALUATION_SAMPLE_PATH}: the sample is of revision {document.get('revision')!r}, not {revision!r}")
        raw = base64.b64decode(document["queriesFloat32"], validate=True)
        queries = np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(count, dimension)
        truth, own = document["groundTruthIds"], document["queryIds"]
    except (KeyError, TypeError, binascii.Error) as error:
        raise _ProbeError(f"{serving_http.EVALUATION_SAMPLE_PATH}: malformed sample ({type(error).__name__}: {error})") from None
    except ValueError as error:  # reshape of a buffer that does not fit
        raise _ProbeError(f"{serving_http.EVALUATION_SAMPLE_PATH}: malformed sample ({error})") from None
    if not isinstance(truth, list) or len(truth) != count or not all(isinstance(row, list) and len(row) >= k for row in truth):
        raise _ProbeError(f"{serving_http.EVALUATION_SAMPLE_PATH}: groundTruthIds must be {count} lists of {k} ids")
    if own is not None and (not isinstance(own, list) or len(own) != count):
        raise _ProbeError(f"{serving_http.EVALUATION_SAMPLE_PATH}: queryIds must be null or {count} ids")
    if count == 0 or k < 1:
        raise _ProbeError(f"{serving_http.EVALUATION_SAMPLE_PATH}: an empty sample (count={count}, k={k})")
    return Sample(revision=revision, k=k, queries=queries, truth=truth, own_ids=own)


async def _probe_pod(
    run: _Run, target: PodTarget, tally: _Tally, sample: Sample, k: int, *,
    batch_size: int, latency_queries: int, in_flight: int,
) -> None:
    """The sample's batches (at most `in_flight` at once), then one untimed request to settle the
    connection, then the single-query requests one after another."""
    count = len(sample.queries)
    singles = min(latency_queries, count)
    batched = count - singles
    own_slots = asyncio.Semaphore(in_flight)

    async def one_batch(start: int) -> None:
        async with own_slots:
            await _search(run, target, tally, sample, k, start, min(batched, start + batch_size))

    await asyncio.gather(*(one_batch(start) for start in range(0, batched, batch_size)))
    if singles and await _search(run, target, tally, sample, k, batched, batched + 1, score=False):
        for row in range(batched, count):
            await _search(run, target, tally, sample, k, row, row + 1, timed=True)


async def _search(
    run: _Run, target: PodTarget, tally: _Tally, sample: Sample, k: int, start: int, end: int, *,
    timed: bool = False, score: bool = True,
) -> bool:
    """Search queries [start, end) on one pod and score the answer; False when it failed or was not sent."""
    own = 1 if sample.own_ids is not None else 0
    async with run.slots:
        remaining = run.remaining()
        if remaining <= 0:
            return False
        tally.requests += 1
        url = f"{target.address}{serving_http.SEARCH_PATH}?k={k + own}"
        body = sample.queries[start:end].astype("<f4").tobytes()
        began = time.perf_counter()
        try:
            async with asyncio.timeout(remaining):
                async with run.session.post(
                    url, data=body, headers={"Content-Type": "application/octet-stream"}
                ) as response:
                    answer = await response.read()
                    seconds = time.perf_counter() - began
                    status, revision = response.status, response.headers.get(serving_http.REVISION_HEADER)
        except TimeoutError:  # before OSError, of which it is a subclass
            tally.failed(target, f"{serving_http.SEARCH_PATH}: no answer within the {remaining:.1f} s left")
            return False
        except (aiohttp.ClientError, OSError) as error:
            tally.failed(target, f"{serving_http.SEARCH_PATH}: {type(error).__name__}: {error}")
            return False
    try:
        if status != 200:
            raise _ProbeError(f"{serving_http.SEARCH_PATH} answered {status}: {answer[:200]!r}")
        if revision is not None and revision != target.revision:
            raise _ProbeError(f"answered as revision {revision!r}, not {target.revision!r} (a reused pod IP?)")
        found = _found_ids(answer, end - start)
    except _ProbeError as error:
        tally.failed(target, str(error))
        return False
    if score:
        if sample.own_ids is not None:
            found = evaluation.without_own(found, sample.own_ids[start:end], k)
        tally.hits += evaluation.hits_at_k(found, sample.truth[start:end], k)
        tally.answered += end - start
    if timed:
        tally.latencies.append(seconds)
    return True


def _found_ids(body: bytes, queries: int) -> list[list[Any]]:
    """The ids of each result of a batch answer; _ProbeError when it is not {"results": [{"ids": [...]}...]}."""
    try:
        results = _json_object(body, serving_http.SEARCH_PATH)["results"]
        if not isinstance(results, list) or len(results) != queries:
            raise _ProbeError(f"{serving_http.SEARCH_PATH}: expected {queries} results, got {type(results).__name__}")
        ids = [result["ids"] for result in results]
    except (KeyError, TypeError, ValueError) as error:
        raise _ProbeError(f"{serving_http.SEARCH_PATH}: malformed answer ({type(error).__name__}: {error})") from None
    if not all(isinstance(row, list) for row in ids):
        raise _ProbeError(f"{serving_http.SEARCH_PATH}: malformed answer (ids must be lists)")
    return ids


def _json_object(body: bytes, path: str) -> dict[str, Any]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise _ProbeError(f"{path}: not JSON ({error})") from None
    if not isinstance(document, dict):
        raise _ProbeError(f"{path}: expected a JSON object, got {type(document).__name__}")
    return document


def _log(
    action: plan_actions.Analyze, measurement: analysis.Measurement, candidate: _Tally, stable: _Tally, seconds: float
) -> None:
    def describe(probe: analysis.Probe | None) -> str:
        if probe is None:
            return "none"
        recall = "n/a" if probe.recall is None else f"{probe.recall:.4f}"
        p99 = "n/a" if probe.p99_latency_ms is None else f"{probe.p99_latency_ms:.2f}ms"
        return f"requests={probe.samples} errors={probe.errors} recall={recall} p99={p99}"

    logger.info("Measured revision=%s step=%d seconds=%.1f candidate(%s) stable=%s(%s)", action.candidate, action.step,
                seconds, describe(measurement.candidate), action.stable, describe(measurement.stable))
    for tally, name in ((candidate, action.candidate), (stable, action.stable)):
        for problem in tally.problems:
            logger.warning("Failed probe: revision=%s %s", name, problem)
