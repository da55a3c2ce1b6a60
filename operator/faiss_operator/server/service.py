"""What a serving pod is and does, apart from HTTP: its readiness and its search path.

The pod starts answering HTTP at once (so liveness holds during a long load), then loads and
verifies the artifact on a background thread and warms the index up; only then is it ready.
A failed verification leaves it unready for good, with the reason in the log and on /readyz:
a restart would not repair a corrupt artifact, and an unready pod never receives traffic.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import threading
import time
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from faiss_operator.index import artifact, faiss_index
from faiss_operator.server import artifact_loader, batching, evaluation_sample, metrics as server_metrics, requests

logger = logging.getLogger(__name__)

DEFAULT_WARMUP_QUERIES = 200


class Phase(str, enum.Enum):
    LOADING = "Loading"
    WARMING = "WarmingUp"
    READY = "Ready"
    FAILED = "Failed"
    DRAINING = "Draining"


class NotReadyError(Exception):
    pass


class SearchService:
    def __init__(
        self,
        artifact_dir: Path,
        *,
        limits: requests.Limits = requests.Limits(),
        workers: int = 2,
        warmup_queries: int = DEFAULT_WARMUP_QUERIES,
        revision: str | None = None,
        search_defaults: Mapping[str, Any] | None = None,
        verify: artifact_loader.Verifier = artifact.verify_artifact,
        mmap: bool = False,
        metrics_dir: Path | None = None,
    ) -> None:
        """`workers`: search threads, 0 to search on the event loop's thread (batching.MicroBatcher);
        `verify`, `mmap`: how the artifact is checked and read (artifact_loader.load_artifact);
        `metrics_dir`: the pod's shared metric files with several processes (metrics.ServerMetrics)."""
        self.artifact_dir = artifact_dir
        self.limits = limits
        self.metrics = server_metrics.ServerMetrics(metrics_dir)
        self._verify = verify
        self._mmap = mmap
        self._workers = workers
        self._warmup_queries = warmup_queries
        self._lock = threading.Lock()
        self._phase = Phase.LOADING
        self._reason = f"loading artifact {artifact_dir}"
        self._artifact: artifact_loader.LoadedArtifact | None = None
        self._batcher: batching.MicroBatcher | None = None
        self._config: dict[str, Any] = {}
        self._revision_override = revision
        self._search_defaults = dict(search_defaults or {})
        self._sample: evaluation_sample.EvaluationSample | evaluation_sample.SampleUnavailableError | None = None
        self._sample_lock = threading.Lock()
        self._ids: npt.NDArray[Any] | None = None  # position -> external id: int64 when every id is an integer

    @property
    def phase(self) -> Phase:
        return self._phase

    @property
    def revision(self) -> str | None:
        return None if self._artifact is None else self._artifact.revision

    @property
    def reason(self) -> str:
        return self._reason

    def _set_phase(self, phase: Phase, reason: str) -> None:
        with self._lock:
            self._phase, self._reason = phase, reason
        self.metrics.ready.set(1 if phase is Phase.READY else 0)

    def load(self) -> None:
        """Verify, load and warm up; never raises: a failure leaves the service unready."""
        started = time.monotonic()
        try:
            loaded = artifact_loader.load_artifact(
                self.artifact_dir, revision=self._revision_override, verify=self._verify, mmap=self._mmap,
            )
            self._search_defaults = loaded.index.check_search_params(self._search_defaults, where="--search-params")
            self._config = loaded.index.effective_config(self._search_defaults)
        except Exception as error:  # any failure to load means: never ready, say why
            self._set_phase(Phase.FAILED, f"artifact {self.artifact_dir} failed verification or loading: {error}")
            logger.error("Failed to load artifact, staying unready: artifact=%s error=%s", self.artifact_dir, error)
            return
        index = loaded.index
        self._ids = _ids_array(index.id_map.view())
        self._artifact = loaded
        logger.info("Loaded artifact: artifact=%s revision=%s vectors=%d seconds=%.1f",
                    self.artifact_dir, loaded.revision, index.ntotal, time.monotonic() - started)
        self._set_phase(Phase.WARMING, "running warm-up queries")
        self._batcher = batching.MicroBatcher(self._search_arrays, workers=self._workers, thread_initializer=_one_omp_thread)
        try:
            self._warm_up(loaded)
            self._publish_gauges(loaded)
        except Exception as error:  # e.g. default search parameters the built index cannot take
            self._set_phase(Phase.FAILED, f"warm-up of artifact {self.artifact_dir} failed: {error}")
            logger.error("Failed to warm up, staying unready: artifact=%s error=%s", self.artifact_dir, error)
            return
        self._set_phase(Phase.READY, f"serving revision {loaded.revision}")
        logger.info("Ready: revision=%s seconds=%.1f", loaded.revision, time.monotonic() - started)

    def _warm_up(self, loaded: artifact_loader.LoadedArtifact) -> None:
        _one_omp_thread()  # as the search threads run: one query, one core
        queries = loaded.warmup_queries
        if queries is None or len(queries) == 0:
            rng = np.random.default_rng(0)
            queries = rng.standard_normal((self._warmup_queries, loaded.index.dimension)).astype(np.float32)
        for number in range(self._warmup_queries):
            row = queries[number % len(queries)]
            loaded.index.search_arrays(row[None, :], 10, self._search_defaults or None)

    def _publish_gauges(self, loaded: artifact_loader.LoadedArtifact) -> None:
        index = loaded.index
        m = self.metrics
        m.vectors.set(index.ntotal)
        # The serialized size is the size of index.faiss; asking FAISS would serialize a copy.
        index_file = loaded.manifest.get("files", {}).get(faiss_index.INDEX_FILE, {})
        m.memory.set(float(index_file.get("bytes", 0)))
        recall = loaded.report.get("recall")
        if isinstance(recall, (int, float)):
            m.recall.labels(k=str(loaded.report.get("k", ""))).set(recall)
        m.info.labels(revision=loaded.revision, index_type=index.index_type, metric=_metric_name(index.metric)).set(1)

    def _search_arrays(self, queries: npt.NDArray[np.float32], k: int, params: Hashable) -> tuple[
        npt.NDArray[np.float32], npt.NDArray[np.int64]
    ]:
        assert self._artifact is not None
        overrides = {**self._search_defaults, **(dict(params) if params else {})}  # type: ignore[call-overload]
        distances, positions = self._artifact.index.search_arrays(queries, k, overrides or None)
        return distances, positions

    def begin_draining(self) -> None:
        if self._phase is Phase.READY:
            self._set_phase(Phase.DRAINING, "shutting down: finishing in-flight requests")

    def close(self) -> None:
        if self._batcher is not None:
            self._batcher.close()

    def info(self) -> dict[str, Any]:
        loaded = self._require_loaded()
        index = loaded.index
        return {
            "revision": loaded.revision,
            "index_type": index.index_type,
            "config": self._config,  # effective: nlist as built, nprobe at most nlist, --search-params applied
            "dimension": index.dimension,
            "vectors": index.ntotal,
            "metric": _metric_name(index.metric),
            "normalize": loaded.manifest.get("normalize"),
            "phase": self._phase.value,
            "build": {key: loaded.report.get(key) for key in ("recall", "k", "p50_ms", "p99_ms", "memory_bytes")},
        }

    def evaluation_sample(self) -> evaluation_sample.EvaluationSample:
        """The artifact's stored query sample, read once (blocking: call it off the event loop).

        Raises NotReadyError before the pod is ready, SampleUnavailableError when the artifact has none.
        """
        loaded = self._require_ready()
        with self._sample_lock:
            if self._sample is None:
                try:
                    self._sample = evaluation_sample.load(
                        self.artifact_dir, index=loaded.index, manifest=loaded.manifest, report=loaded.report,
                        revision=loaded.revision,
                    )
                except evaluation_sample.SampleUnavailableError as error:
                    self._sample = error
            sample = self._sample
        if isinstance(sample, evaluation_sample.SampleUnavailableError):
            raise sample
        return sample

    def parse(self, body: bytes) -> requests.SearchRequest:
        loaded = self._require_ready()
        index = loaded.index
        return requests.parse_search(body, dimension=index.dimension, index_type=index.index_type, limits=self.limits)

    def parse_binary(self, body: bytes, query_string: bytes) -> requests.SearchRequest:
        loaded = self._require_ready()
        index = loaded.index
        return requests.parse_binary_search(
            body, query_string, dimension=index.dimension, index_type=index.index_type, limits=self.limits,
        )

    def submit(self, request: requests.SearchRequest) -> asyncio.Future[tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]]:
        """Queue `request`'s queries for this loop turn's batch (batching.MicroBatcher.submit); the
        future gets (distances (n, k), positions (n, k)) or raises InputError (what the index
        refuses). Raises NotReadyError at once before the pod is ready. Call on the event loop."""
        self._require_ready()
        assert self._batcher is not None
        return self._batcher.submit(request.queries, request.k, request.params or None)

    def encode(
        self, request: requests.SearchRequest, result: tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]],
    ) -> bytes:
        """The JSON answer to `request` from its search `result`, encoded once: {"ids",
        "distances"[, "metadata"]} for the single-vector form, {"results": [...]} otherwise.
        Without metadata, ids and distances go from FAISS's arrays to JSON through numpy indexing
        and orjson's numpy support, with no Python object per hit."""
        loaded = self._require_loaded()
        distances, positions = result
        ids = self._ids
        if request.include_metadata or ids is None:
            results = [self._result(loaded, d, p, request.include_metadata) for d, p in zip(distances, positions)]
            return orjson.dumps(results[0] if request.single else {"results": results})
        if ids.dtype == object:
            rows = [_hits_tolist(ids, d, p) for d, p in zip(distances, positions)]
        elif (positions >= 0).all():  # the usual case: k hits in every row
            rows = [{"ids": i, "distances": d} for i, d in zip(ids[positions], distances)]
        else:  # FAISS pads with -1 when fewer than k vectors are found
            rows = [{"ids": ids[p[p >= 0]], "distances": d[p >= 0]} for d, p in zip(distances, positions)]
        return orjson.dumps(rows[0] if request.single else {"results": rows}, option=orjson.OPT_SERIALIZE_NUMPY)

    def _result(
        self, loaded: artifact_loader.LoadedArtifact, distances: npt.NDArray[np.float32],
        positions: npt.NDArray[np.int64], include_metadata: bool,
    ) -> dict[str, Any]:
        found = positions >= 0  # FAISS pads with -1 when fewer than k vectors are found
        kept = positions[found]
        ids = loaded.index.external_ids(kept[None, :])[0] if kept.size else []
        result: dict[str, Any] = {"ids": ids, "distances": distances[found].tolist()}
        if include_metadata:
            metadata = loaded.index.metadata
            result["metadata"] = [metadata.get(i) if i is not None else None for i in ids]
        return result

    def _require_loaded(self) -> artifact_loader.LoadedArtifact:
        if self._artifact is None:
            raise NotReadyError(f"{self._phase.value}: {self._reason}")
        return self._artifact

    def _require_ready(self) -> artifact_loader.LoadedArtifact:
        if self._phase not in (Phase.READY, Phase.DRAINING):
            raise NotReadyError(f"{self._phase.value}: {self._reason}")
        return self._require_loaded()


def _ids_array(ids: Sequence[Any]) -> npt.NDArray[Any]:
    """External ids by position: int64 when all are integers in range, else an object array."""
    if isinstance(ids, range):
        return np.arange(ids.start, ids.stop, ids.step, dtype=np.int64)
    if all(type(i) is int for i in ids):
        try:
            return np.array(ids, dtype=np.int64)
        except OverflowError:
            pass
    array = np.empty(len(ids), dtype=object)
    array[:] = ids
    return array


def _hits_tolist(ids: npt.NDArray[Any], distances: npt.NDArray[np.float32], positions: npt.NDArray[np.int64]) -> dict[str, Any]:
    found = positions >= 0
    return {"ids": ids[positions[found]].tolist(), "distances": distances[found]}


def _metric_name(metric: Any) -> str:
    return str(getattr(metric, "value", metric))


def _one_omp_thread() -> None:
    import faiss

    faiss.omp_set_num_threads(1)
