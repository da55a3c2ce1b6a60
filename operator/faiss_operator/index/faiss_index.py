"""`FAISSIndex`: the seed guide's index object — typed config in, external ids and metadata out.

It wraps one FAISS index with what a service needs around it: config layering and validation,
automatic training, ids and metadata, per-call search parameters, a rolling latency window, and
a checksummed artifact on disk. The build Job, the serving pods and the tuner all use it, so the
numbers the operator gates on come from the same code that serves.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from faiss_operator.index import (
    artifact, capacity, data_quality, evaluation, factory, importing, latency, normalization, record_files, records, search_params,
    settings, training_progress,
)
from faiss_operator.index import config as index_config

logger = logging.getLogger(__name__)

INDEX_FILE = "index.faiss"
IDS_FILE = record_files.IDS_FILE
METADATA_FILE = record_files.METADATA_FILE
ARTIFACT_FILES = (INDEX_FILE, IDS_FILE, METADATA_FILE)
MAX_K = 10_000
# Distinct per-call parameter sets kept ready; requests rarely use more than a handful.
MAX_CACHED_PARAMS = 64

_METRIC_ALIASES = {
    "l2": index_config.Metric.L2,
    "innerproduct": index_config.Metric.INNER_PRODUCT,
    "inner_product": index_config.Metric.INNER_PRODUCT,
    "ip": index_config.Metric.INNER_PRODUCT,
}


class IndexStateError(ValueError):
    """An operation the index cannot do in its present state (empty, not built yet)."""


class InputError(ValueError):
    """Embeddings, queries, k or search parameters that do not fit this index."""


@dataclasses.dataclass(frozen=True)
class Hit:
    id: records.ExternalId
    distance: float
    metadata: records.Metadata | None


@dataclasses.dataclass(frozen=True)
class SearchResult:
    """The hits of one query, nearest first; the three lists are aligned."""

    ids: list[records.ExternalId]
    distances: list[float]
    metadata: list[records.Metadata | None]

    @property
    def hits(self) -> list[Hit]:
        return [Hit(i, d, m) for i, d, m in zip(self.ids, self.distances, self.metadata, strict=True)]

    def __len__(self) -> int:
        return len(self.ids)

    def as_dict(self) -> dict[str, Any]:
        return {"ids": self.ids, "distances": self.distances, "metadata": self.metadata}


def parse_metric(value: index_config.Metric | str) -> index_config.Metric:
    if isinstance(value, index_config.Metric):
        return value
    if isinstance(value, str) and value.strip().lower() in _METRIC_ALIASES:
        return _METRIC_ALIASES[value.strip().lower()]
    raise index_config.ConfigError(
        f"metric: unknown metric {value!r}; expected L2 or InnerProduct (cosine = InnerProduct with normalize=True)"
    )


def _check_dimension(dimension: Any) -> int:
    if isinstance(dimension, bool) or not isinstance(dimension, (int, np.integer)) or dimension < 1:
        raise index_config.ConfigError(f"dimension: expected a positive integer, got {dimension!r}")
    return int(dimension)


class FAISSIndex:
    """A FAISS index with typed config, external ids, metadata, stats and a checksummed artifact."""

    def __init__(
        self,
        dimension: int,
        index_type: str | None = None,
        config: Mapping[str, Any] | None = None,
        *,
        metric: index_config.Metric | str = index_config.Metric.L2,
        normalize: bool = False,
        env: Mapping[str, str] | None = None,
        config_file: str | os.PathLike[str] | None = None,
        latency_window: int = latency.DEFAULT_WINDOW,
        **legacy: Any,
    ) -> None:
        """`legacy` takes config keys as keyword arguments, as the seed's first API did
        (`FAISSIndex(dimension=384, index_type="IVF", nlist=100, nprobe=10)`)."""
        self._dimension = _check_dimension(dimension)
        self._metric = parse_metric(metric)
        self._normalize = bool(normalize)
        explicit = _merge_legacy(config, legacy)
        self._resolved = settings.resolve_config(
            index_type=index_type, config=explicit, env=env, config_file=config_file
        )
        self._config: index_config.IndexConfig = self._resolved.config
        self._index: Any = None
        self._plan: factory.BuildPlan | None = None
        self._records = records.IdMap()
        self._metadata: dict[records.ExternalId, records.Metadata] = {}
        self._latency = latency.LatencyWindow(latency_window)
        self._param_cache: dict[tuple[tuple[str, int], ...], Any] = {}
        self._memory_cache: tuple[int, int] | None = None
        self._write_lock = threading.Lock()
        self.build_seconds = 0.0

    # -- construction from other shapes ------------------------------------------------------

    @classmethod
    def from_tuning_result(
        cls, dimension: int, tuning_result: Any, **kwargs: Any
    ) -> FAISSIndex:
        """An index configured as one result of `FAISSTuner.tune()` (object or its JSON dict)."""
        if isinstance(tuning_result, Mapping):
            index_type, values = tuning_result.get("index_type"), tuning_result.get("config")
        else:
            index_type = getattr(tuning_result, "index_type", None)
            values = getattr(tuning_result, "config", None)
        if not isinstance(index_type, str) or not isinstance(values, Mapping):
            raise index_config.ConfigError(
                "tuning_result: expected a tuning result (or its dict) with 'index_type' and 'config'"
            )
        # The result is the whole config: the environment must not change what was measured.
        kwargs.setdefault("env", {})
        return cls(dimension, index_type, dict(values), **kwargs)

    # -- properties ---------------------------------------------------------------------------

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def metric(self) -> index_config.Metric:
        return self._metric

    @property
    def normalize(self) -> bool:
        return self._normalize

    @property
    def index_type(self) -> index_config.IndexTypeName:
        return self._config.index_type

    @property
    def config(self) -> index_config.IndexConfig:
        return self._config

    @property
    def config_sources(self) -> Mapping[str, str]:
        return self._resolved.sources

    @property
    def ntotal(self) -> int:
        return 0 if self._index is None else int(self._index.ntotal)

    def __len__(self) -> int:
        return self.ntotal

    @property
    def id_map(self) -> records.IdMap:
        """Position in the FAISS index -> external id."""
        return self._records

    @property
    def metadata(self) -> dict[records.ExternalId, records.Metadata]:
        """External id -> metadata, for the ids that have any."""
        return self._metadata

    @property
    def faiss_index(self) -> Any:
        """The underlying faiss.Index (None before the first add)."""
        return self._index

    @property
    def factory_string(self) -> str | None:
        return None if self._plan is None else self._plan.factory

    @property
    def is_trained(self) -> bool:
        return self._index is not None and bool(self._index.is_trained)

    @property
    def nlist(self) -> int | None:
        """The built IVF index's number of lists (chosen from the data unless configured); None
        before the first add and for other types."""
        return None if self._index is None else factory.effective_nlist_of(self._index)

    def check_search_params(self, params: Mapping[str, Any], *, where: str = "params") -> dict[str, int]:
        """`params` validated for this index type (index/search_params.py); InputError naming the field."""
        try:
            return search_params.check(self.index_type, params, where=where)
        except search_params.SearchParamsError as error:
            raise InputError(str(error)) from None

    def effective_search_params(self, overrides: Mapping[str, Any] | None = None) -> dict[str, int]:
        """The search-time parameters a search with `overrides` uses: nprobe at most the built nlist."""
        checked = self.check_search_params(overrides) if overrides else {}
        return search_params.resolve(self._config, nlist=self.nlist, overrides=checked)

    def effective_config(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The config as built and searched (snake_case, no index_type): values the build chose
        from the data (nlist, m_pq) filled in, and the effective search-time parameters."""
        values: dict[str, Any] = self._config.model_dump(mode="json")
        values.pop("index_type", None)
        if self._index is not None:
            values.update(factory.built_fields(self._index, self._config))
        values.update(self.effective_search_params(overrides))
        return values

    # -- adding -------------------------------------------------------------------------------

    def plan_build(self, num_vectors: int) -> factory.BuildPlan:
        """How this index is built for `num_vectors` vectors: the factory string, the training
        sample's size (index/config.py training_sample_size)."""
        return factory.plan_build(self._config, dimension=self._dimension, num_vectors=num_vectors)

    def create(
        self, *, num_vectors: int, training_sample: Any = None, seed: int = 0,
        on_training_iteration: training_progress.OnIteration | None = None,
    ) -> factory.BuildPlan:
        """Create the empty FAISS index for `num_vectors` vectors (nlist is sized from them) and
        train it, so that the vectors can then be added in chunks (`add_embeddings`).

        `training_sample`: the `plan_build(num_vectors).training_vectors` rows a type that trains
        learns from, float32 and already normalised when this index normalises; a memory map is
        used as is (index/training_sample.py draws it without copying the input). Ignored by the
        types that do not train. `on_training_iteration(done, iterations, objective)`: called after
        each iteration of an IVF's coarse k-means (index/training_progress.py), from another thread
        while this call holds the index's write lock: it must not call back into this index.
        Returns the plan."""
        with self._write_lock:
            if self._index is not None:
                raise IndexStateError("the index already exists: create() comes before the first add")
            index, plan = factory.create_index(
                self._config, dimension=self._dimension, metric=self._metric, num_vectors=num_vectors
            )
            started = time.perf_counter()
            if plan.needs_training:
                if training_sample is None or getattr(training_sample, "ndim", 0) != 2:
                    raise InputError(f"training_sample: {plan.factory} trains; give an (n, d) float32 sample")
                if training_sample.dtype != np.float32 or training_sample.shape[1] != self._dimension:
                    raise InputError(
                        f"training_sample: expected float32 rows of dimension {self._dimension}, got "
                        f"{training_sample.dtype} {training_sample.shape}"
                    )
                factory.train_index(index, plan, training_sample, seed=seed, on_iteration=on_training_iteration)
            self.build_seconds += time.perf_counter() - started
            self._index, self._plan = index, plan
            self._param_cache.clear()
        return plan

    def reserve(self, num_vectors: int) -> None:
        """Allocate the created index's tables for `num_vectors` vectors at once, as one add of
        everything would (index/capacity.py), so that adding them in chunks never reallocates.
        Call it once the training sample is released: the two need not be held together."""
        if self._index is None:
            raise IndexStateError("create() the index before reserving its tables")
        with self._write_lock:
            capacity.reserve(self._index, num_vectors)

    def add_embeddings(
        self, embeddings: Any, ids: Any = None, metadata: Any = None
    ) -> list[records.ExternalId]:
        """Add vectors with their external ids and metadata; returns the ids added.

        The first call builds the FAISS index (sizing nlist from the number of vectors) and
        trains it when the type needs training; later calls only add.
        """
        vectors = self._as_vectors("embeddings", embeddings, allow_single=False)
        with self._write_lock:
            new_ids = records.prepare_ids(ids, count=vectors.shape[0], start=len(self._records))
            self._records.check_new(new_ids)
            new_metadata = records.prepare_metadata(metadata, new_ids)
            started = time.perf_counter()
            if self._index is None:
                index, plan = factory.create_index(
                    self._config, dimension=self._dimension, metric=self._metric, num_vectors=vectors.shape[0]
                )
                if plan.needs_training:
                    factory.train_index(index, plan, vectors)
                self._index, self._plan = index, plan
            self._index.add(vectors)
            self.build_seconds += time.perf_counter() - started
            self._records.extend(new_ids)
            self._metadata.update(new_metadata)
            self._param_cache.clear()
        return list(new_ids)

    # -- searching ----------------------------------------------------------------------------

    def search(
        self, queries: Any, k: int = 10, params: Mapping[str, Any] | None = None
    ) -> list[SearchResult]:
        """The k nearest stored vectors of each query, as external ids, distances and metadata.

        A single 1-d query is accepted and gives a list of one result.
        """
        distances, positions = self.search_arrays(queries, k, params)
        results = []
        for row_distances, row_positions in zip(distances, positions, strict=True):
            keep = row_positions >= 0
            hit_ids = [self._records[int(p)] for p in row_positions[keep]]
            results.append(
                SearchResult(
                    ids=hit_ids,
                    distances=[float(d) for d in row_distances[keep]],
                    metadata=[self._metadata.get(i) for i in hit_ids],
                )
            )
        return results

    def search_arrays(
        self, queries: Any, k: int = 10, params: Mapping[str, Any] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(distances (q, k) float32, positions (q, k) int64); position -1 where fewer than k hits."""
        if self._index is None or self._index.ntotal == 0:
            raise IndexStateError("the index is empty: add embeddings (or load an index) before searching")
        vectors = self._as_vectors("queries", queries, allow_single=True)
        self._check_k(k)
        search_params = self._search_parameters(params)
        started = time.perf_counter()
        if search_params is None:
            distances, positions = self._index.search(vectors, k)
        else:
            distances, positions = self._index.search(vectors, k, params=search_params)
        self._latency.record(time.perf_counter() - started)
        return distances, positions

    def external_ids(self, positions: np.ndarray) -> list[list[records.ExternalId | None]]:
        """Map a (q, k) array of positions to external ids; -1 (no hit) becomes None."""
        return [[self._records.external(int(p)) for p in row] for row in np.atleast_2d(positions)]

    def _check_k(self, k: Any) -> None:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= MAX_K:
            raise InputError(f"k: expected an integer from 1 to {MAX_K}, got {k!r}")

    def _search_parameters(self, params: Mapping[str, Any] | None) -> Any:
        if not params:
            return None
        checked = self.check_search_params(params)
        cache_key = tuple(sorted(checked.items()))
        cached = self._param_cache.get(cache_key)
        if cached is not None:
            return cached
        resolved = search_params.resolve(self._config, nlist=self.nlist, overrides=checked)
        built = factory.search_parameters(self._index, {key: resolved[key] for key in checked})
        if len(self._param_cache) >= MAX_CACHED_PARAMS:
            self._param_cache.clear()
        self._param_cache[cache_key] = built
        return built

    def _as_vectors(self, name: str, values: Any, *, allow_single: bool) -> np.ndarray:
        try:
            array = np.asarray(values)
        except (TypeError, ValueError) as error:
            raise InputError(f"{name}: not a numeric array: {error}") from None
        if array.dtype.kind not in "fiu" or array.dtype == np.bool_:
            raise InputError(f"{name}: expected a float array, got dtype {array.dtype}")
        if array.ndim == 1 and allow_single:
            array = array.reshape(1, -1)
        if array.ndim != 2:
            shape_hint = "(n, d) or (d,)" if allow_single else "(n, d)"
            raise InputError(f"{name}: expected shape {shape_hint}, got {array.shape}")
        if array.shape[0] == 0:
            raise InputError(f"{name}: no vectors (shape {array.shape})")
        if array.shape[1] != self._dimension:
            raise InputError(f"{name}: dimension {array.shape[1]} does not match the index dimension {self._dimension}")
        vectors = np.ascontiguousarray(array, dtype=np.float32)
        if not np.isfinite(vectors).all():
            raise InputError(f"{name}: contains NaN or infinite values")
        if self._normalize:
            zero_rows = data_quality.near_zero_rows(vectors)
            if zero_rows.size:
                raise InputError(
                    f"{name}: {zero_rows.size} (near-)zero vector(s) (L2 norm below {data_quality.NEAR_ZERO_NORM:g}; "
                    f"first at row {int(zero_rows[0])}) have no direction, so cosine similarity (normalize) is "
                    "undefined for them"
                )
            vectors = normalization.l2_normalized(vectors)
        return vectors

    # -- stats --------------------------------------------------------------------------------

    def memory_bytes(self) -> int:
        """Bytes of the serialized FAISS index (cached until the next add)."""
        if self._index is None:
            return 0
        if self._memory_cache is None or self._memory_cache[0] != self.ntotal:
            self._memory_cache = (self.ntotal, evaluation.memory_bytes(self._index))
        return self._memory_cache[1]

    def get_stats(self) -> dict[str, Any]:
        window = self._latency.stats()
        return {
            "total_vectors": self.ntotal,
            "dimension": self._dimension,
            "metric": self._metric.value,
            "normalize": self._normalize,
            "index_type": self.index_type,
            "config": self._config.model_dump(mode="json"),
            "effective_config": self.effective_config(),
            "factory": self.factory_string,
            "nlist": self.nlist,
            "is_trained": self.is_trained,
            "memory_bytes": self.memory_bytes(),
            "vectors_with_metadata": len(self._metadata),
            "p50_query_time_ms": window.p50_ms,
            "p90_query_time_ms": window.p90_ms,
            "p99_query_time_ms": window.p99_ms,
            "searches_in_window": window.count,
        }

    def reset_latency(self) -> None:
        self._latency.clear()

    # -- save and load ------------------------------------------------------------------------

    def manifest_fields(self) -> dict[str, Any]:
        """What the manifest says about this index (the builder adds its own fields)."""
        return {
            "faiss_version": faiss.__version__,
            "index_type": self.index_type,
            "config": self._config.model_dump(mode="json"),
            "effective_config": self.effective_config(),
            "factory": self.factory_string,
            "nlist": self.nlist,
            "dimension": self._dimension,
            "metric": self._metric.value,
            "normalize": self._normalize,
            "num_vectors": self.ntotal,
            "num_metadata": len(self._metadata),
        }

    def save_index(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """Write the artifact directory (index, ids, metadata, manifest); returns the manifest.

        An existing directory is replaced only when it holds a previous artifact (a manifest) or
        nothing; anything else is refused rather than mixed into the checksummed artifact.
        """
        self.write_files(path)
        return artifact.write_manifest(path, **self.manifest_fields())

    def write_files(self, path: str | os.PathLike[str]) -> None:
        """Write the index, ids and metadata files of the artifact directory, but no manifest: a
        caller that adds files of its own (the builder) writes the manifest once, after them."""
        if self._index is None:
            raise IndexStateError("nothing to save: the index is empty; add embeddings first")
        root = Path(path)
        _prepare_directory(root)
        faiss.write_index(self._index, str(root / INDEX_FILE))
        ids = self._records.view()
        record_files.write_ids(root / IDS_FILE, ids)
        record_files.write_metadata(root / METADATA_FILE, ids, self._metadata)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> FAISSIndex:
        """An index read from an artifact directory, after its checksums are verified."""
        return cls.load_with_manifest(path)[0]

    @classmethod
    def load_with_manifest(
        cls, path: str | os.PathLike[str], *, verified_manifest: dict[str, Any] | None = None, mmap: bool = False,
    ) -> tuple[FAISSIndex, dict[str, Any]]:
        """The index and its verified manifest, hashing every file once (gigabytes at 1M vectors).

        `verified_manifest`: the manifest a caller has already verified (serve --workers verifies
        once for all its processes); the files are then not hashed again. `mmap`: map index.faiss
        read-only (faiss.IO_FLAG_MMAP_IFC) so that processes reading the same file share its pages;
        an index FAISS cannot map is read into memory instead.
        """
        manifest = verified_manifest if verified_manifest is not None else artifact.verify_artifact(path)
        dimension = manifest.get("dimension")
        if not isinstance(dimension, int):
            raise artifact.ArtifactError(f"artifact {path}: manifest has no valid dimension")
        loaded = cls(dimension, "Flat", env={})
        loaded._read_artifact(Path(path), manifest, mmap=mmap)
        return loaded, manifest

    def load_index(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """Replace this index with the artifact at `path`; its dimension must match. Returns the manifest."""
        manifest = artifact.verify_artifact(path)
        if manifest.get("dimension") != self._dimension:
            raise artifact.ArtifactError(
                f"artifact {path}: dimension {manifest.get('dimension')} does not match this index's "
                f"dimension {self._dimension}"
            )
        self._read_artifact(Path(path), manifest)
        return manifest

    def _read_artifact(self, root: Path, manifest: dict[str, Any], *, mmap: bool = False) -> None:
        for name in ARTIFACT_FILES:
            if name not in manifest["files"]:
                raise artifact.ArtifactError(f"artifact {root}: the manifest lists no {name}")
        try:
            index_type = str(manifest["index_type"])
            parsed = index_config.parse_config(index_type, manifest.get("config") or {})
            metric = parse_metric(manifest["metric"])
        except (KeyError, index_config.ConfigError) as error:
            raise artifact.ArtifactError(f"artifact {root}: manifest describes no valid index: {error}") from None
        try:
            index = _read_faiss_index(root / INDEX_FILE, mmap=mmap)
        except RuntimeError as error:
            raise artifact.ArtifactError(f"artifact {root}: {INDEX_FILE} is not a FAISS index: {error}") from None
        if int(index.metric_type) != factory.faiss_metric(metric):
            raise artifact.ArtifactError(
                f"artifact {root}: the manifest says metric {metric.value}, but {INDEX_FILE} was built with "
                f"FAISS metric type {int(index.metric_type)}"
            )
        if int(index.d) != self._dimension:
            raise artifact.ArtifactError(
                f"artifact {root}: {INDEX_FILE} has dimension {index.d}, the manifest says {self._dimension}"
            )
        expected = manifest.get("num_vectors")
        ids = record_files.read_ids(root, expected)
        metadata_rows = record_files.read_metadata(root)
        if not (int(index.ntotal) == len(ids) == len(metadata_rows) == expected):
            raise artifact.ArtifactError(
                f"artifact {root}: counts disagree: manifest {expected}, {INDEX_FILE} {index.ntotal}, "
                f"{IDS_FILE} {len(ids)}, {METADATA_FILE} {len(metadata_rows)}"
            )
        self._adopt(
            index, parsed, metric=metric, normalize=bool(manifest.get("normalize", False)), ids=ids,
            metadata_rows=metadata_rows, factory_string=str(manifest.get("factory")), nlist=manifest.get("nlist"),
            source=f"artifact:{root}",
        )

    @classmethod
    def from_faiss_index(
        cls, index: Any, *, ids: Sequence[records.ExternalId] | None = None,
        metadata: Sequence[records.Metadata | None] | None = None, normalize: bool = False, source: str = "imported",
    ) -> FAISSIndex:
        """A plain FAISS index (what `faiss.read_index` returns for a `faiss.write_index` file) as
        this library's index, so that `save_index` writes it as an artifact with a manifest.

        Its type, config and metric are read from the index itself (index/importing.py); ids
        default to 0..n-1 (or the ids of an IndexIDMap), metadata to none. Raises ImportRefused
        for an index this library cannot describe, RecordError for bad ids or metadata."""
        described = importing.describe(index)
        parsed = index_config.parse_config(described.index_type, described.config)
        row_ids = list(described.ids if ids is None else ids)
        rows = list(metadata) if metadata is not None else [None] * len(row_ids)
        if not (int(described.index.ntotal) == len(row_ids) == len(rows)):
            raise importing.ImportRefused(
                f"counts disagree: the index holds {described.index.ntotal} vectors, {len(row_ids)} ids, "
                f"{len(rows)} metadata rows"
            )
        imported = cls(int(described.index.d), described.index_type, described.config, env={})
        imported._adopt(
            described.index, parsed, metric=described.metric, normalize=normalize, ids=row_ids, metadata_rows=rows,
            factory_string=described.factory, nlist=described.config.get("nlist"), source=source,
        )
        return imported

    def _adopt(
        self, index: Any, parsed: index_config.IndexConfig, *, metric: index_config.Metric, normalize: bool,
        ids: Sequence[records.ExternalId], metadata_rows: Sequence[records.Metadata | None], factory_string: str,
        nlist: int | None, source: str,
    ) -> None:
        """Make a built FAISS index this object's index, with its ids and metadata rows."""
        index_type = parsed.index_type
        id_map = records.IdMap()
        id_map.check_new(ids)
        id_map.extend(ids)
        with self._write_lock:
            self._config = parsed
            self._resolved = settings.ResolvedConfig(
                index_type=parsed.index_type,
                config=parsed,
                sources={key: source for key in ["index_type", *index_config.config_keys(index_type)]},
            )
            self._metric = metric
            self._normalize = normalize
            self._index = index
            self._plan = factory.BuildPlan(
                factory=factory_string, needs_training=False, min_training_vectors=0,
                training_vectors=0, nlist=nlist,
            )
            factory.apply_search_defaults(
                index, search_params.resolve(parsed, nlist=factory.effective_nlist_of(index))
            )
            self._records = id_map
            self._metadata = {i: m for i, m in zip(ids, metadata_rows, strict=True) if m is not None}
            self._param_cache.clear()
            self._memory_cache = None
            self._latency.clear()


def _merge_legacy(config: Mapping[str, Any] | None, legacy: Mapping[str, Any]) -> dict[str, Any] | None:
    if config is not None and not isinstance(config, Mapping):
        raise index_config.ConfigError(f"config: expected a mapping of parameters, got {type(config).__name__}")
    if not legacy:
        return None if config is None else dict(config)
    merged = dict(config or {})
    for key, value in legacy.items():
        if key in merged and merged[key] != value:
            raise index_config.ConfigError(
                f"config.{key}: given twice with different values ({merged[key]!r} in config, {value!r} as argument)"
            )
        merged[key] = value
    return merged


def _prepare_directory(root: Path) -> None:
    if root.exists() and not root.is_dir():
        raise artifact.ArtifactError(f"artifact {root}: exists and is not a directory")
    if root.is_dir() and any(root.iterdir()):
        if not (root / artifact.MANIFEST_NAME).is_file():
            raise artifact.ArtifactError(
                f"artifact {root}: refusing to write into a non-empty directory that holds no artifact"
            )
        # Empty it rather than remove it: the directory may be a volume's mount point.
        for child in root.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    root.mkdir(parents=True, exist_ok=True)


def _read_faiss_index(path: Path, *, mmap: bool) -> Any:
    if mmap:
        try:
            return faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC)
        except RuntimeError as error:
            logger.warning("Cannot map the index, reading it into memory: path=%s error=%s", path, error)
    return faiss.read_index(str(path))
