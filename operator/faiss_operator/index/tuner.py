"""`FAISSTuner`: sweep build and search parameters per index type and rank what was measured.

Choosing nlist, m or ef_search by rule of thumb is how indexes end up either slow or inaccurate;
the tuner measures instead. Each build configuration is built once and every search-time value
is measured on it (changing ef_search or nprobe needs no rebuild), against exact search on
held-out queries. Results are ranked for a stated target — by default the smallest index that
reaches the recall target — with the Pareto front (recall up, p99 down, memory down) marked, and
serialise to JSON so the `tune` subcommand's output can feed `FAISSIndex.from_tuning_result`.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import numpy as np

from faiss_operator.index import config as index_config
from faiss_operator.index import evaluation, faiss_index, normalization, synthetic

Objective = Literal["memory", "latency", "build_time", "recall"]
OBJECTIVES: tuple[Objective, ...] = ("memory", "latency", "build_time", "recall")
DEFAULT_TYPES: tuple[index_config.IndexTypeName, ...] = ("IVF", "HNSW", "OPQ+HNSW")
REPORT_VERSION = 1


class TuningError(ValueError):
    """A tuning request that cannot run: bad data, target or search space; the message says which."""


def default_space(index_type: str, dimension: int) -> dict[str, list[Any]]:
    """The grid swept for `index_type` when none is given: the values worth comparing."""
    if index_type == "Flat":
        return {}
    if index_type == "IVF":
        return {"nprobe": [1, 4, 8, 16, 32, 64]}
    if index_type == "IVFPQ":
        sizes = [m for m in (16, 32, 48, 64, 96) if dimension % m == 0 and m <= dimension] or [1]
        return {"m_pq": sizes[-2:], "nprobe": [8, 16, 32, 64]}
    if index_type == "HNSW":
        return {"m": [16, 32], "ef_construction": [200], "ef_search": [16, 32, 64, 128, 256]}
    if index_type == "OPQ+HNSW":
        return {"encoding": ["SQ6", "SQ8"], "m_hnsw": [16, 32], "ef_search": [32, 64, 128, 256]}
    index_config.config_model_for(index_type)
    return {}


@dataclasses.dataclass(frozen=True)
class TuningTarget:
    """What "best" means: meet `min_recall` (and `max_p99_ms` if set), then minimise `optimize`."""

    min_recall: float = 0.95
    max_p99_ms: float | None = None
    optimize: Objective = "memory"

    def __post_init__(self) -> None:
        if not 0.0 < self.min_recall <= 1.0:
            raise TuningError(f"min_recall: expected a value in (0, 1], got {self.min_recall!r}")
        if self.max_p99_ms is not None and self.max_p99_ms <= 0:
            raise TuningError(f"max_p99_ms: expected a positive number of milliseconds, got {self.max_p99_ms!r}")
        if self.optimize not in OBJECTIVES:
            raise TuningError(f"optimize: expected one of {', '.join(OBJECTIVES)}, got {self.optimize!r}")

    def met_by(self, result: TuningResult) -> bool:
        if result.recall_at_k < self.min_recall:
            return False
        return self.max_p99_ms is None or result.p99_ms <= self.max_p99_ms


@dataclasses.dataclass(frozen=True)
class TuningResult:
    """One measured configuration; `config` excludes the index type and builds the same index."""

    index_type: str
    config: dict[str, Any]
    recall_at_k: float
    p50_ms: float
    p99_ms: float
    memory_bytes: int
    bytes_per_vector: float
    build_seconds: float
    batch_qps: float
    meets_target: bool = False
    pareto: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TuningResult:
        names = {field.name for field in dataclasses.fields(cls)}
        missing = sorted(names - {"meets_target", "pareto"} - set(values))
        if missing:
            raise TuningError(f"tuning result: missing fields {', '.join(missing)}")
        return cls(**{key: value for key, value in values.items() if key in names})


@dataclasses.dataclass(frozen=True)
class TuningReport(Sequence[TuningResult]):
    """Results ordered best-first for `target`; a sequence of TuningResult."""

    results: tuple[TuningResult, ...]
    target: TuningTarget
    dimension: int
    metric: str
    k: int
    num_vectors: int
    num_queries: int
    data: str

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[TuningResult]:
        return iter(self.results)

    def __getitem__(self, position: int) -> TuningResult:  # type: ignore[override]
        return self.results[position]

    @property
    def best(self) -> TuningResult | None:
        """The first result that meets the target, or None when none does."""
        return self.results[0] if self.results and self.results[0].meets_target else None

    @property
    def pareto_front(self) -> list[TuningResult]:
        return [result for result in self.results if result.pareto]

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": REPORT_VERSION,
            "target": dataclasses.asdict(self.target),
            "dimension": self.dimension,
            "metric": self.metric,
            "k": self.k,
            "num_vectors": self.num_vectors,
            "num_queries": self.num_queries,
            "data": self.data,
            "results": [result.to_dict() for result in self.results],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> TuningReport:
        try:
            values = json.loads(text)
            if values.get("version") != REPORT_VERSION:
                raise TuningError(f"tuning report: version {values.get('version')!r} is not {REPORT_VERSION}")
            return cls(
                results=tuple(TuningResult.from_dict(item) for item in values["results"]),
                target=TuningTarget(**values["target"]),
                dimension=int(values["dimension"]),
                metric=str(values["metric"]),
                k=int(values["k"]),
                num_vectors=int(values["num_vectors"]),
                num_queries=int(values["num_queries"]),
                data=str(values["data"]),
            )
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as error:
            raise TuningError(f"tuning report: not a report written by FAISSTuner: {error!r}") from None


def mark_pareto(results: Sequence[TuningResult]) -> list[TuningResult]:
    """The results with `pareto` set on those no other result beats on recall, p99 and memory."""

    def dominates(a: TuningResult, b: TuningResult) -> bool:
        no_worse = a.recall_at_k >= b.recall_at_k and a.p99_ms <= b.p99_ms and a.memory_bytes <= b.memory_bytes
        better = a.recall_at_k > b.recall_at_k or a.p99_ms < b.p99_ms or a.memory_bytes < b.memory_bytes
        return no_worse and better

    return [
        dataclasses.replace(result, pareto=not any(dominates(other, result) for other in results))
        for result in results
    ]


def rank(results: Sequence[TuningResult], target: TuningTarget) -> list[TuningResult]:
    """Those meeting the target first, cheapest by `target.optimize`; then the rest, best recall first."""
    keys = {
        "memory": lambda r: (r.memory_bytes, r.p99_ms, -r.recall_at_k),
        "latency": lambda r: (r.p99_ms, r.memory_bytes, -r.recall_at_k),
        "build_time": lambda r: (r.build_seconds, r.p99_ms, r.memory_bytes),
        "recall": lambda r: (-r.recall_at_k, r.p99_ms, r.memory_bytes),
    }
    marked = [dataclasses.replace(result, meets_target=target.met_by(result)) for result in mark_pareto(results)]
    meeting = sorted((r for r in marked if r.meets_target), key=keys[target.optimize])
    missing = sorted((r for r in marked if not r.meets_target), key=lambda r: (-r.recall_at_k, r.p99_ms))
    return meeting + missing


class FAISSTuner:
    """Measure index types and parameters on given (or generated) data and rank the results."""

    def __init__(
        self,
        dimension: int,
        *,
        metric: index_config.Metric | str = index_config.Metric.L2,
        normalize: bool = False,
        k: int = 10,
        latency_queries: int = 200,
    ) -> None:
        if isinstance(dimension, bool) or not isinstance(dimension, int) or dimension < 1:
            raise TuningError(f"dimension: expected a positive integer, got {dimension!r}")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise TuningError(f"k: expected a positive integer, got {k!r}")
        self.dimension = dimension
        self.metric = faiss_index.parse_metric(metric)
        self.normalize = normalize
        self.k = k
        self.latency_queries = latency_queries

    def tune(
        self,
        embeddings: np.ndarray | None = None,
        queries: np.ndarray | None = None,
        *,
        index_types: Sequence[str] | None = None,
        space: Mapping[str, Mapping[str, Sequence[Any]]] | None = None,
        target: TuningTarget | None = None,
        target_recall: float | None = None,
        sample_size: int = 10_000,
        num_queries: int = 200,
        seed: int = synthetic.DEFAULT_SEED,
    ) -> TuningReport:
        """Sweep and rank. Without `embeddings`, a generated clustered sample of `sample_size`
        vectors is used; without `queries`, `num_queries` rows are held out of the data."""
        goal = target or TuningTarget()
        if target_recall is not None:
            goal = dataclasses.replace(goal, min_recall=target_recall)
        types = list(index_types or DEFAULT_TYPES)
        for name in types:
            index_config.config_model_for(name)
        grids = {name: self._grid(name, (space or {}).get(name)) for name in types}
        unknown = sorted(set(space or {}) - set(types))
        if unknown:
            raise TuningError(f"space: index types {', '.join(unknown)} are not among the tuned types {types}")
        base, held_out, origin = self._data(embeddings, queries, sample_size, num_queries, seed)
        index_for_truth = base
        query_vectors = held_out
        if self.normalize:
            index_for_truth = normalization.l2_normalized(base)
            query_vectors = normalization.l2_normalized(held_out)
        truth = evaluation.exact_neighbors(index_for_truth, query_vectors, self.k, self.metric)

        measured: list[TuningResult] = []
        for name in types:
            measured.extend(self._measure_type(name, grids[name], base, held_out, truth))
        return TuningReport(
            results=tuple(rank(measured, goal)),
            target=goal,
            dimension=self.dimension,
            metric=self.metric.value,
            k=self.k,
            num_vectors=int(base.shape[0]),
            num_queries=int(held_out.shape[0]),
            data=origin,
        )

    def _grid(self, index_type: str, given: Mapping[str, Sequence[Any]] | None) -> dict[str, list[Any]]:
        grid = {key: list(values) for key, values in (given or default_space(index_type, self.dimension)).items()}
        valid = set(index_config.config_keys(index_type))
        for key, values in grid.items():
            if key not in valid:
                raise TuningError(
                    f"space.{index_type}.{key}: not a parameter of {index_type}; valid: {', '.join(sorted(valid))}"
                )
            if isinstance(values, (str, bytes)) or not values:
                raise TuningError(f"space.{index_type}.{key}: expected a non-empty list of values")
        return grid

    def _data(
        self,
        embeddings: np.ndarray | None,
        queries: np.ndarray | None,
        sample_size: int,
        num_queries: int,
        seed: int,
    ) -> tuple[np.ndarray, np.ndarray, str]:
        if embeddings is None:
            if sample_size < 2 * num_queries or num_queries < 1:
                raise TuningError(
                    f"sample_size ({sample_size}) must be at least twice num_queries ({num_queries}), and num_queries >= 1"
                )
            generated = synthetic.clustered_vectors(sample_size + num_queries, self.dimension, seed=seed)
            base, held_out = synthetic.split_queries(generated, num_queries, seed=seed)
            return base, held_out, f"generated:clustered:{sample_size}"
        data = np.asarray(embeddings, dtype=np.float32)
        if data.ndim != 2 or data.shape[1] != self.dimension:
            raise TuningError(f"embeddings: expected shape (n, {self.dimension}), got {data.shape}")
        if queries is not None:
            held_out = np.asarray(queries, dtype=np.float32)
            if held_out.ndim != 2 or held_out.shape[1] != self.dimension or held_out.shape[0] == 0:
                raise TuningError(f"queries: expected shape (q, {self.dimension}), got {held_out.shape}")
            return np.ascontiguousarray(data), np.ascontiguousarray(held_out), "given"
        if data.shape[0] <= num_queries:
            raise TuningError(f"embeddings: {data.shape[0]} vectors leave none after holding out {num_queries} queries")
        base, held_out = synthetic.split_queries(data, num_queries, seed=seed)
        return base, held_out, "given"

    def _measure_type(
        self,
        index_type: str,
        grid: Mapping[str, list[Any]],
        base: np.ndarray,
        queries: np.ndarray,
        truth: np.ndarray,
    ) -> list[TuningResult]:
        search_keys = sorted(k for k in grid if k in index_config.config_model_for(index_type).SEARCH_TIME_FIELDS)
        build_keys = sorted(k for k in grid if k not in search_keys)
        results = []
        for build_values in itertools.product(*(grid[key] for key in build_keys)):
            build_config = dict(zip(build_keys, build_values, strict=True))
            try:
                index = faiss_index.FAISSIndex(
                    self.dimension, index_type, build_config, metric=self.metric, normalize=self.normalize, env={}
                )
            except index_config.ConfigError as error:
                raise TuningError(f"space.{index_type}: {error}") from None
            started = time.perf_counter()
            index.add_embeddings(base)
            build_seconds = time.perf_counter() - started
            memory = index.memory_bytes()
            for search_values in itertools.product(*(grid[key] for key in search_keys)):
                params = dict(zip(search_keys, search_values, strict=True))
                # The values really searched (nprobe at most nlist), so equal searches dedupe.
                params = {key: value for key, value in index.effective_search_params(params).items() if key in params}
                results.append(self._measure(index, params, queries, truth, build_seconds, memory))
        return _unique(results)

    def _measure(
        self,
        index: faiss_index.FAISSIndex,
        params: dict[str, int],
        queries: np.ndarray,
        truth: np.ndarray,
        build_seconds: float,
        memory: int,
    ) -> TuningResult:
        _, found = index.search_arrays(queries, self.k, params=params or None)
        recall = evaluation.recall_at_k(found, truth, self.k)

        def one(batch: np.ndarray, k: int) -> Any:
            return index.search_arrays(batch, k, params=params or None)

        latency = evaluation.single_query_latency(one, queries[: self.latency_queries], self.k)
        qps = evaluation.batch_qps(one, queries, self.k, repeats=1)
        config = {**index.config.model_dump(mode="json"), **params}
        config.pop("index_type", None)
        return TuningResult(
            index_type=index.index_type,
            config=config,
            recall_at_k=round(recall, 4),
            p50_ms=round(latency.p50_ms, 4),
            p99_ms=round(latency.p99_ms, 4),
            memory_bytes=memory,
            bytes_per_vector=round(memory / max(index.ntotal, 1), 1),
            build_seconds=round(build_seconds, 3),
            batch_qps=round(qps, 1),
        )


def _unique(results: list[TuningResult]) -> list[TuningResult]:
    seen: set[str] = set()
    kept = []
    for result in results:
        key = json.dumps([result.index_type, result.config], sort_keys=True)
        if key not in seen:
            seen.add(key)
            kept.append(result)
    return kept

