"""The HTTP routes of a serving pod, on Starlette (served by uvicorn; see docs/serving.md).

POST /v1/search, the hot path, is answered by a plain ASGI function in front of the Starlette
router: building Starlette's request, routing and response objects costs a measurable share of
a sub-millisecond search. Everything else goes through Starlette.

Every answer is JSON except /metrics. A request the server refuses gets a 4xx with
{"error": message}; an unknown path 404, a wrong method 405, a body over the limit 413 (checked
from Content-Length before reading, and again while reading), a search before the index is
ready 503. Nothing a client sends can produce a 500: the search path catches only what it
expects, and an unexpected error is logged and answered 500 as a bug, never crashes the pod.
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
from starlette.types import ASGIApp, Receive, Scope, Send

from faiss_operator.index import InputError
from faiss_operator.server import evaluation_sample, requests as search_requests
from faiss_operator.server.metrics import SearchTally, source_of
from faiss_operator.server.service import NotReadyError, Phase, SearchService

logger = logging.getLogger(__name__)

JSON = "application/json"
BINARY = b"application/octet-stream"  # the compact request form: little-endian float32 rows


def _json(document: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(document), status_code=status, media_type=JSON, headers=headers)


def _error(status: int, message: str) -> Response:
    return _json({"error": message}, status)


def create_app(service: SearchService, waiting_for_peers: Callable[[], int] | None = None) -> ASGIApp:
    """The routes; `waiting_for_peers` (with --workers) counts the pod's other processes not yet ready."""
    m = service.metrics
    tally = SearchTally(m)

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
        tally.flush()
        return Response(service.metrics.exposition(), media_type=prometheus_client.CONTENT_TYPE_LATEST)

    async def search(request: Request) -> Response:
        raise AssertionError("POST /v1/search is answered in front of the router")

    async def not_found(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        return _error(error.status_code, f"{request.method} {request.url.path}: {error.detail}")

    async def unexpected(request: Request, error: Exception) -> Response:
        logger.exception("Failed to answer request: path=%s", request.url.path)
        return _error(500, f"internal error: {type(error).__name__}")

    router = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/v1/info", info, methods=["GET"]),
            Route("/v1/evaluation-sample", sample, methods=["GET"]),
            Route("/v1/search", search, methods=["POST"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        exception_handlers={HTTPException: not_found, Exception: unexpected},
    )

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/v1/search" and scope["method"] == "POST":
            started = time.perf_counter()
            tally.start()
            try:
                queries = 0
                try:
                    status, body, queries = await _fast_search(service, scope, receive)
                except Exception:
                    logger.exception("Failed to answer request: path=/v1/search")
                    status, body = 500, orjson.dumps({"error": "internal error"})
                headers = [(b"content-type", JSON_BYTES), (b"content-length", b"%d" % len(body))]
                revision = service.revision
                if revision:  # which revision answered, when a Service spreads probes over several
                    headers.append((b"x-faiss-revision", revision.encode()))
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                tally.record(status, source_of(scope["headers"]), time.perf_counter() - started, queries)
            finally:
                tally.stop()
            return
        await router(scope, receive, send)

    return app


JSON_BYTES = JSON.encode()


async def _fast_search(service: SearchService, scope: Scope, receive: Receive) -> tuple[int, bytes, int]:
    """(status, body, query vectors searched) for one POST /v1/search."""
    limit = service.limits.max_body_bytes
    binary = False
    try:
        for name, value in scope["headers"]:
            if name == b"content-type":
                binary = value.split(b";", 1)[0].strip().lower() == BINARY
            if name == b"content-length":
                if not value.isdigit():
                    raise search_requests.RequestError(400, f"invalid Content-Length {value.decode(errors='replace')!r}")
                if int(value) > limit:
                    raise search_requests.RequestError(
                        413, f"request body of {int(value)} bytes is larger than the limit of {limit}"
                    )
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return 400, orjson.dumps({"error": "client disconnected"}), 0
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise search_requests.RequestError(413, f"request body is larger than the limit of {limit} bytes")
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        parsed = service.parse_binary(body, scope["query_string"]) if binary else service.parse(body)
        return 200, await service.search_encoded(parsed), len(parsed.queries)
    except search_requests.RequestError as error:
        return error.status, orjson.dumps({"error": error.message}), 0
    except InputError as error:  # what only the loaded index can tell (vectors, k, params it refuses)
        return 400, orjson.dumps({"error": str(error)}), 0
    except NotReadyError as error:
        return 503, orjson.dumps({"error": f"not ready: {error}"}), 0
