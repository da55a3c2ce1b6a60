"""POST /v1/search apart from its transport: limits, parsing, the batch, the answer's bytes, the metrics.

The HTTP protocol (server/http_protocol.py) hands over a whole request and gets one call of
`answer(status, body)` back, possibly before `start` returns (a refused request), otherwise on
the event loop once the request's batch has been searched. No coroutine and no task per
request: the search is a future of the loop turn's batch (batching.MicroBatcher.submit).

Statuses: 200; 400 a malformed or invalid request (or one the loaded index refuses); 413 a
body or batch over the limits; 503 before the pod is ready; 500 only for a bug (logged).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import orjson

from faiss_operator.contract import serving_http
from faiss_operator.index import InputError
from faiss_operator.server import requests as search_requests
from faiss_operator.server.metrics import SOURCE_CLIENT, SOURCE_PROBE, SearchTally
from faiss_operator.server.service import NotReadyError, SearchService

logger = logging.getLogger(__name__)

_JSON_HEADER = b"content-type: application/json\r\n"
_REVISION_HEADER = serving_http.header_key(serving_http.REVISION_HEADER) + b": %s\r\n"
Answer = Callable[[int, bytes], None]
"""Called once per request with (HTTP status, JSON body)."""
SearchResult = tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]


def error_body(message: str) -> bytes:
    """The body of every refusal: {"error": message}."""
    return orjson.dumps({"error": message})


class SearchEndpoint:
    def __init__(self, service: SearchService) -> None:
        self.service = service
        self.tally = SearchTally(service.metrics)
        self._headers: tuple[str | None, bytes] = (None, _JSON_HEADER)

    def answer_headers(self) -> bytes:
        """The header lines of a search answer: its content type and, once loaded, which revision
        answered (X-Faiss-Revision; the operator's probes spread over a Service read it)."""
        revision = self.service.revision
        if revision != self._headers[0]:
            self._headers = (revision, _JSON_HEADER + (_REVISION_HEADER % revision.encode() if revision else b""))
        return self._headers[1]

    @property
    def max_body_bytes(self) -> int:
        return self.service.limits.max_body_bytes

    def refuse_length(self, content_length: int) -> bytes | None:
        """The 413 body when a declared Content-Length (bytes) is over the limit, before any of it is read."""
        limit = self.max_body_bytes
        if content_length > limit:
            return error_body(f"request body of {content_length} bytes is larger than the limit of {limit}")
        return None

    def start(self, body: bytes, query_string: bytes, *, binary: bool, probe: bool, answer: Answer) -> None:
        """Parse and queue one request; `binary`: the float32 form (Content-Type
        application/octet-stream, options in `query_string`), else JSON. `probe`: the operator's
        live analysis sent it (X-Faiss-Probe: 1), counted under source="probe"."""
        started = time.perf_counter()
        source = SOURCE_PROBE if probe else SOURCE_CLIENT
        self.tally.start()
        service = self.service
        try:
            parsed = service.parse_binary(body, query_string) if binary else service.parse(body)
            future = service.submit(parsed)
        except Exception as error:
            self._finish(answer, source, started, 0, *_refusal(error))
            return
        future.add_done_callback(functools.partial(self._searched, parsed, answer, source, started))

    def _searched(
        self, parsed: search_requests.SearchRequest, answer: Answer, source: str, started: float,
        future: asyncio.Future[SearchResult],
    ) -> None:
        if future.cancelled():  # the batcher was closed under it
            self._finish(answer, source, started, 0, 503, error_body("not ready: the server is stopping"))
            return
        try:
            body = self.service.encode(parsed, future.result())
        except Exception as error:
            self._finish(answer, source, started, 0, *_refusal(error))
            return
        self._finish(answer, source, started, len(parsed.queries), 200, body)

    def _finish(self, answer: Answer, source: str, started: float, queries: int, status: int, body: bytes) -> None:
        try:
            answer(status, body)
        finally:
            self.tally.record(status, source, time.perf_counter() - started, queries)
            self.tally.stop()


def _refusal(error: Exception) -> tuple[int, bytes]:
    if isinstance(error, search_requests.RequestError):
        return error.status, error_body(error.message)
    if isinstance(error, InputError):  # what only the loaded index can tell (vectors, k, params it refuses)
        return 400, error_body(str(error))
    if isinstance(error, NotReadyError):
        return 503, error_body(f"not ready: {error}")
    logger.error("Failed to answer request: path=/v1/search", exc_info=error)
    return 500, error_body("internal error")
