"""Validation of search requests: every way a request can be wrong becomes a RequestError (4xx).

A JSON body is parsed with orjson (which refuses NaN and Infinity literals, as JSON does) and its
shape checked by a strict pydantic model, so that a string, a boolean or a nested list where a
number belongs is refused rather than coerced. The numeric checks (dimension, finiteness in
float32, batch size, k) and the per-request search parameters come after, against the loaded
index; parameters are validated by the index layer's one rule (index/search_params.py), so the
server accepts exactly what the library accepts, with the same bounds and messages.

The compact form (Content-Type application/octet-stream) carries the query vectors as
little-endian float32, row after row, with k, include_metadata and search parameters in the query
string: it skips decoding hundreds of JSON numbers per query, the largest share of the server's
own CPU per request. It is checked the same way (length a whole number of rows, finiteness,
batch size, k, parameters).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Annotated, Any
from urllib.parse import parse_qsl

import numpy as np
import numpy.typing as npt
import orjson
import pydantic

from faiss_operator.index import search_params


class RequestError(Exception):
    """A request the server refuses; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclasses.dataclass(frozen=True)
class Limits:
    max_k: int = 1000
    max_batch: int = 1024
    max_body_bytes: int = 16 << 20


class _SearchBody(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", strict=True)

    vectors: list[list[float]] | None = None
    vector: list[float] | None = None
    k: Annotated[int, pydantic.Field(ge=1)] = 10
    params: dict[str, Any] | None = None
    include_metadata: bool = False


@dataclasses.dataclass(frozen=True)
class SearchRequest:
    queries: npt.NDArray[np.float32]
    k: int
    params: tuple[tuple[str, int], ...]  # sorted, hashable: requests with equal params share a batch
    include_metadata: bool
    single: bool  # answered in the single-vector form


def _check_body_size(body: bytes, limits: Limits) -> None:
    if len(body) > limits.max_body_bytes:
        raise RequestError(413, f"request body of {len(body)} bytes is larger than the limit of {limits.max_body_bytes}")


def parse_search(
    body: bytes,
    *,
    dimension: int,
    index_type: str,
    limits: Limits,
) -> SearchRequest:
    _check_body_size(body, limits)
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise RequestError(400, f"malformed JSON: {error}") from None
    if not isinstance(document, dict):
        raise RequestError(400, "the body must be a JSON object with 'vectors' (or 'vector') and optionally 'k'")
    try:
        parsed = _SearchBody.model_validate(document)
    except pydantic.ValidationError as error:
        raise RequestError(400, _describe(error)) from None

    if (parsed.vectors is None) == (parsed.vector is None):
        raise RequestError(400, "give exactly one of 'vectors' (a list of vectors) or 'vector' (one vector)")
    rows = parsed.vectors if parsed.vectors is not None else [parsed.vector or []]
    if not rows:
        raise RequestError(400, "'vectors' is empty")
    if len(rows) > limits.max_batch:
        raise RequestError(413, f"{len(rows)} vectors in one request is more than the limit of {limits.max_batch}")
    for number, row in enumerate(rows):
        if len(row) != dimension:
            where = "'vector'" if parsed.vector is not None else f"vectors[{number}]"
            raise RequestError(400, f"{where} has dimension {len(row)}; this index has dimension {dimension}")
    queries = np.array(rows, dtype=np.float32)
    if not np.isfinite(queries).all():  # one pass in the usual case; the row only to name it
        first = int(np.flatnonzero(~np.isfinite(queries).all(axis=1))[0])
        raise RequestError(400, f"vectors[{first}] holds a value outside the float32 range")
    if parsed.k > limits.max_k:
        raise RequestError(400, f"k={parsed.k} is above the limit of {limits.max_k}")
    return SearchRequest(
        queries=queries,
        k=parsed.k,
        params=_check_params(parsed.params or {}, index_type),
        include_metadata=parsed.include_metadata,
        single=parsed.vector is not None,
    )


def parse_binary_search(
    body: bytes,
    query_string: bytes,
    *,
    dimension: int,
    index_type: str,
    limits: Limits,
) -> SearchRequest:
    _check_body_size(body, limits)
    row_bytes = 4 * dimension
    if not body:
        raise RequestError(400, "the body is empty; send one or more vectors as little-endian float32")
    if len(body) % row_bytes:
        raise RequestError(
            400, f"body of {len(body)} bytes is not a whole number of vectors of {row_bytes} bytes "
            f"(dimension {dimension}, little-endian float32)",
        )
    rows = len(body) // row_bytes
    if rows > limits.max_batch:
        raise RequestError(413, f"{rows} vectors in one request is more than the limit of {limits.max_batch}")
    k, include_metadata, options = _query_options(query_string)
    params = dict(options)
    if k > limits.max_k:
        raise RequestError(400, f"k={k} is above the limit of {limits.max_k}")
    queries = np.frombuffer(body, dtype="<f4").reshape(rows, dimension).astype(np.float32)  # a writable native copy
    if not np.isfinite(queries).all():  # one pass in the usual case; the row only to name it
        first = int(np.flatnonzero(~np.isfinite(queries).all(axis=1))[0])
        raise RequestError(400, f"vectors[{first}] holds NaN or an infinity")
    return SearchRequest(
        queries=queries,
        k=k,
        params=_check_params(params, index_type),
        include_metadata=include_metadata,
        single=False,
    )


@functools.lru_cache(maxsize=256)  # clients repeat the same few query strings; a refused one is not cached
def _query_options(query_string: bytes) -> tuple[int, bool, tuple[tuple[str, int], ...]]:
    try:
        pairs = parse_qsl(query_string.decode("ascii"), keep_blank_values=True, strict_parsing=bool(query_string))
    except (UnicodeDecodeError, ValueError):
        raise RequestError(400, f"malformed query string {query_string.decode(errors='replace')!r}") from None
    k = 10
    include_metadata = False
    params: dict[str, Any] = {}
    seen: set[str] = set()
    for key, value in pairs:
        if key in seen:
            raise RequestError(400, f"query parameter {key!r} given more than once")
        seen.add(key)
        if key == "include_metadata":
            if value not in ("true", "false", "1", "0"):
                raise RequestError(400, f"include_metadata: expected true or false, got {value!r}")
            include_metadata = value in ("true", "1")
            continue
        number = _integer(key, value)
        if key == "k":
            if number < 1:
                raise RequestError(400, f"k: must be >= 1, got {number}")
            k = number
        else:
            params[key] = number
    return k, include_metadata, tuple(params.items())


def _integer(key: str, value: str) -> int:
    if not value.lstrip("-").isdigit() or not value.isascii():
        if key == "k":
            raise RequestError(400, f"k: must be an integer, got {value!r}")
        # Worded as index/search_params.py words the same fault in a JSON body.
        raise RequestError(400, f"params.{key}: expected a positive integer, got {value!r}")
    return int(value)


def _check_params(params: dict[str, Any], index_type: str) -> tuple[tuple[str, int], ...]:
    if not params:
        return ()
    try:
        checked = search_params.check(index_type, params)
    except search_params.SearchParamsError as error:
        raise RequestError(400, str(error)) from None
    return tuple(sorted(checked.items()))


def _describe(error: pydantic.ValidationError) -> str:
    problems = []
    for item in error.errors()[:5]:
        location = ".".join(str(part) for part in item["loc"]) or "body"
        if item["type"] == "extra_forbidden":
            problems.append(f"{location}: unknown field")
        else:
            problems.append(f"{location}: {item['msg']}")
    more = len(error.errors()) - 5
    return "; ".join(problems) + (f"; and {more} more" if more > 0 else "")
