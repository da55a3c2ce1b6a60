"""The HTTP routes of a serving pod other than the search, on Starlette (see docs/serving.md).

POST /v1/search, the hot path, never reaches this app: the connection handler
(server/http_protocol.py) answers it through server/search_endpoint.py, and hands every other
request here as ASGI. Every answer is JSON except /metrics. A request the server refuses gets a
4xx with {"error": message}: an unknown path 404, a wrong method 405 (GET /v1/search included), a
search before the index is ready 503. An unexpected error is logged and answered 500 as a bug,
never crashes the pod.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson
import prometheus_client
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from faiss_operator.contract import serving_http
from faiss_operator.server import evaluation_sample, requests as search_requests
from faiss_operator.server.metrics import source_of
from faiss_operator.server.service import NotReadyError, Phase, SearchService

logger = logging.getLogger(__name__)

JSON = "application/json"


def _json(document: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(document), status_code=status, media_type=JSON, headers=headers)


def _error(status: int, message: str) -> Response:
    return _json({"error": message}, status)


def create_app(
    service: SearchService, flush_metrics: Callable[[], None], waiting_for_peers: Callable[[], int] | None = None,
) -> ASGIApp:
    """The routes; `flush_metrics` publishes counts kept back by the search path (SearchTally.flush)
    before /metrics answers; `waiting_for_peers` (with --workers) counts the pod's other processes
    not yet ready."""
    m = service.metrics

    def record(endpoint: str, status: int, started: float, source: str) -> None:
        m.request_seconds.labels(endpoint=endpoint, source=source).observe(time.perf_counter() - started)
        m.requests.labels(endpoint=endpoint, code=str(status), source=source).inc()

    async def healthz(request: Request) -> Response:
        return _json({"status": "alive", "phase": service.phase.value})

    async def readyz(request: Request) -> Response:
        ready = service.phase is Phase.READY
        reason = service.reason
        waiting = waiting_for_peers() if ready and waiting_for_peers else 0
        if waiting:
            ready, reason = False, f"waiting for {waiting} other serving process(es) of this pod to be ready"
        return _json({"ready": ready, "phase": service.phase.value, "reason": reason}, 200 if ready else 503)

    async def info(request: Request) -> Response:
        started = time.perf_counter()
        try:
            response = _json(service.info())
        except NotReadyError as error:
            response = _error(503, str(error))
        record("info", response.status_code, started, source_of(request.scope["headers"]))
        return response

    async def sample(request: Request) -> Response:
        """GET /v1/evaluation-sample: the artifact's stored queries and ground truth (see evaluation_sample)."""
        started = time.perf_counter()
        try:
            options = evaluation_sample.parse_request(request.scope["query_string"])
            stored = await asyncio.to_thread(service.evaluation_sample)  # reads the files once, then cached
            body = await asyncio.to_thread(evaluation_sample.encode, stored, options)
            response = Response(body, media_type=JSON)
        except search_requests.RequestError as error:
            response = _error(error.status, error.message)
        except NotReadyError as error:
            response = _error(503, f"not ready: {error}")
        except evaluation_sample.SampleUnavailableError as error:
            response = _error(404, f"no evaluation sample: {error}")
        record("evaluation-sample", response.status_code, started, source_of(request.scope["headers"]))
        return response

    async def metrics(request: Request) -> Response:
        flush_metrics()
        return Response(service.metrics.exposition(), media_type=prometheus_client.CONTENT_TYPE_LATEST)

    async def search(request: Request) -> Response:
        raise AssertionError("POST /v1/search is answered by the connection handler (http_protocol)")

    async def not_found(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        return _error(error.status_code, f"{request.method} {request.url.path}: {error.detail}")

    async def unexpected(request: Request, error: Exception) -> Response:
        logger.exception("Failed to answer request: path=%s", request.url.path)
        return _error(500, f"internal error: {type(error).__name__}")

    router = Starlette(
        routes=[
            Route(serving_http.LIVENESS_PATH, healthz, methods=["GET"]),
            Route(serving_http.READINESS_PATH, readyz, methods=["GET"]),
            Route(serving_http.INFO_PATH, info, methods=["GET"]),
            Route(serving_http.EVALUATION_SAMPLE_PATH, sample, methods=["GET"]),
            Route(serving_http.SEARCH_PATH, search, methods=["POST"]),
            Route(serving_http.METRICS_PATH, metrics, methods=["GET"]),
        ],
        exception_handlers={HTTPException: not_found, Exception: unexpected},
    )

    return router
