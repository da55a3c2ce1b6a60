"""The artifact's stored evaluation sample, as `GET /v1/evaluation-sample` serves it.

The controller's live analysis sends the very queries the build evaluated to candidate and
stable pods and scores their answers against the same ground truth; so the build's recall and
the live recall mean the same thing. The candidate pod is where that sample is: it serves it
from its own (verified) artifact, so the controller never reads the volume itself.

The answer (camelCase, as the Kubernetes-side consumer reads it):

    {"revision": str, "k": int, "metric": "L2" | "InnerProduct", "normalize": bool,
     "dimension": int, "count": int (queries in this answer), "total": int (in the artifact),
     "queries": [[float] * dimension] * count           (encoding=json, the default)
       or "queriesFloat32": base64 of count x dimension little-endian float32 (encoding=float32),
     "groundTruthIds": [[id] * k] * count,                the exact top-k external ids, own row left out
     "queryRows": [int] * count | null,                   the input rows the queries were taken from
     "queryIds": [id] * count | null}                     the external ids of those rows

`queryRows`/`queryIds` are null for held-out queries (`build --queries`). A client that scores
answers must search k + 1 deep when `queryIds` is given and leave each query's own id out
(index.evaluation.without_own), as the build did. The float32 form is exact and a third of the
size; JSON floats are what a person reads with curl.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import numpy as np
import numpy.typing as npt
import orjson

from faiss_operator.index import FAISSIndex, artifact, records
from faiss_operator.server import requests

# At 384 dimensions 1,000 queries are ~1.5 MB as float32 and ~4 MB as JSON; the largest sample a
# build may store (evaluation.queries <= 100,000) would be 150 MB, so one answer holds at most
# MAX_LIMIT queries and says how many the artifact has (`total`).
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
ENCODINGS = ("json", "float32")


class SampleUnavailableError(Exception):
    """The artifact stores no usable evaluation sample; the message says what is missing."""


@dataclasses.dataclass(frozen=True)
class EvaluationSample:
    revision: str
    k: int
    metric: str
    normalize: bool
    queries: npt.NDArray[np.float32]  # (total, dimension)
    ground_truth_ids: list[list[records.ExternalId | None]]  # (total, k)
    query_rows: list[int] | None  # (total,) or None for held-out queries
    query_ids: list[records.ExternalId | None] | None

    @property
    def total(self) -> int:
        return int(self.queries.shape[0])


@dataclasses.dataclass(frozen=True)
class SampleRequest:
    limit: int
    encoding: str


def parse_request(query_string: bytes) -> SampleRequest:
    """`limit` (1..MAX_LIMIT, default DEFAULT_LIMIT) and `encoding` (json | float32); RequestError (400) otherwise."""
    try:
        pairs = parse_qsl(query_string.decode("ascii"), keep_blank_values=True, strict_parsing=bool(query_string))
    except (UnicodeDecodeError, ValueError):
        raise requests.RequestError(400, f"malformed query string {query_string.decode(errors='replace')!r}") from None
    options: dict[str, str] = {}
    for key, value in pairs:
        if key not in ("limit", "encoding"):
            raise requests.RequestError(400, f"unknown query parameter {key!r}; valid: encoding, limit")
        if key in options:
            raise requests.RequestError(400, f"query parameter {key!r} given more than once")
        options[key] = value
    limit = DEFAULT_LIMIT
    if "limit" in options:
        text = options["limit"]
        if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
            raise requests.RequestError(400, f"limit: expected an integer from 1 to {MAX_LIMIT}, got {text!r}")
        limit = int(text)
    encoding = options.get("encoding", "json")
    if encoding not in ENCODINGS:
        raise requests.RequestError(400, f"encoding: expected one of {', '.join(ENCODINGS)}, got {encoding!r}")
    return SampleRequest(limit=limit, encoding=encoding)


def load(directory: Path, *, index: FAISSIndex, manifest: dict[str, Any], report: dict[str, Any],
         revision: str) -> EvaluationSample:
    """Read the sample of a verified artifact; SampleUnavailableError when it has none or it does not fit."""
    queries_path = directory / artifact.QUERIES_FILE
    if not queries_path.is_file():
        raise SampleUnavailableError(
            f"artifact of revision {revision} stores no evaluation sample ({artifact.QUERIES_FILE} is absent)"
        )
    recorded = manifest.get("evaluation")
    evaluation: dict[str, Any] = recorded if isinstance(recorded, dict) else {}
    k = evaluation.get("k", report.get("k"))
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise SampleUnavailableError(f"artifact of revision {revision} records no evaluation k")
    queries = np.load(queries_path, allow_pickle=False)
    if queries.ndim != 2 or queries.shape[1] != index.dimension:
        raise SampleUnavailableError(
            f"artifact of revision {revision}: {artifact.QUERIES_FILE} has shape {queries.shape}, "
            f"expected (queries, {index.dimension})"
        )
    truth = _ground_truth_ids(directory, index, revision)
    rows: list[int] | None = None
    ids: list[records.ExternalId | None] | None = None
    if (directory / artifact.QUERY_ROWS_FILE).is_file():
        positions = np.load(directory / artifact.QUERY_ROWS_FILE, allow_pickle=False).astype(np.int64)
        rows = [int(row) for row in positions.tolist()]
        ids = index.external_ids(positions[None, :])[0] if rows else []
    lengths = {len(queries), len(truth)} | ({len(rows)} if rows is not None else set())
    if len(lengths) != 1 or any(len(row) < k for row in truth):
        raise SampleUnavailableError(
            f"artifact of revision {revision}: queries, ground truth and query rows do not match "
            f"({len(queries)} queries, {len(truth)} ground-truth rows of at least {k})"
        )
    return EvaluationSample(
        revision=revision, k=k, metric=str(manifest.get("metric", "L2")), normalize=bool(manifest.get("normalize")),
        queries=np.ascontiguousarray(queries, dtype=np.float32), ground_truth_ids=[row[:k] for row in truth],
        query_rows=rows, query_ids=ids,
    )


def _ground_truth_ids(directory: Path, index: FAISSIndex, revision: str) -> list[list[records.ExternalId | None]]:
    ids_path = directory / artifact.GROUND_TRUTH_IDS_FILE
    if ids_path.is_file():
        document = json.loads(ids_path.read_text())
        if isinstance(document, list) and all(isinstance(row, list) for row in document):
            return document
        raise SampleUnavailableError(f"artifact of revision {revision}: {artifact.GROUND_TRUTH_IDS_FILE} is not a list of lists")
    positions_path = directory / artifact.GROUND_TRUTH_FILE
    if positions_path.is_file():
        return index.external_ids(np.load(positions_path, allow_pickle=False))
    raise SampleUnavailableError(f"artifact of revision {revision} stores queries but no ground truth")


def encode(sample: EvaluationSample, request: SampleRequest) -> bytes:
    """The JSON answer for `request`: the first `limit` queries of the sample (which the build drew at random)."""
    count = min(request.limit, sample.total)
    queries = sample.queries[:count]
    document: dict[str, Any] = {
        "revision": sample.revision,
        "k": sample.k,
        "metric": sample.metric,
        "normalize": sample.normalize,
        "dimension": int(queries.shape[1]),
        "count": count,
        "total": sample.total,
        "groundTruthIds": sample.ground_truth_ids[:count],
        "queryRows": None if sample.query_rows is None else sample.query_rows[:count],
        "queryIds": None if sample.query_ids is None else sample.query_ids[:count],
    }
    if request.encoding == "float32":
        document["queriesFloat32"] = base64.b64encode(queries.astype("<f4").tobytes()).decode("ascii")
    else:
        # float64 so that each number is written with the digits that read back to the same float32
        document["queries"] = queries.astype(np.float64)
    return orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)
