"""The steps of a build, in order: validate the input, train, add, evaluate, write the artifact.

Everything that can be checked cheaply is checked before the first vector is added. The artifact
is assembled in a temporary directory beside its destination and renamed into place only when
complete, so a reader (a serving pod, a retried Job) sees either no artifact or a whole one.

The build streams: the input stays a memory map, and every pass over it (checks, training
sample, adding, the evaluation's exact ground truth) holds one converted chunk at a time
(index/chunks.py), so the anonymous memory is the index plus a chunk plus the training sample
(docs/build-memory.md), never a second copy of the input. The peak is measured and reported.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from faiss_operator.builder import anon_memory, progress as progress_lines
from faiss_operator.builder.exit_codes import BuildError, OutputError, OutputExistsError
from faiss_operator.index import FAISSIndex, artifact, chunks, data_quality, evaluation, faiss_index, ground_truth, settings
from faiss_operator.index import config as index_config, factory, training_sample
from faiss_operator.sources import dataset as datasets, embeddings as embeddings_io, http
from faiss_operator.sources import errors as source_errors

logger = logging.getLogger(__name__)

ADD_CHUNK_ROWS = chunks.CHUNK_ROWS


@dataclasses.dataclass(frozen=True)
class BuildRequest:
    source: str
    out: Path
    ids: str | None = None
    metadata: str | None = None
    metadata_id_key: str = "id"
    queries: str | None = None
    index_type: str | None = None
    config: Mapping[str, Any] | None = None
    config_file: str | None = None
    dimension: int | None = None
    metric: str = "L2"
    normalize: bool = False
    eval_queries: int = 1000
    k: int = 10
    revision: str | None = None
    overwrite: bool = False
    seed: int = 0
    download: http.DownloadPolicy = http.DownloadPolicy()
    env: Mapping[str, str] | None = None
    # Called once the input is read and checked, with what was measured of it (input_fields):
    # `build` writes it to the termination log, so that a build killed for memory afterwards
    # still says how large its input was.
    on_input: Callable[[dict[str, Any]], None] | None = None
    # Called at every progress line with {"phase", "percent", "peak_anon_bytes"} (builder/progress.py).
    on_progress: Callable[[dict[str, Any]], None] | None = None


def input_fields(data: datasets.Dataset) -> dict[str, Any]:
    """The measured input: vectors, dimension, and their bytes as float32 (what the index holds)."""
    return {
        "vectors": data.count,
        "dimension": data.dimension,
        "input_bytes": data.count * data.dimension * np.dtype(np.float32).itemsize,
        "metadata_records": len(data.metadata) if data.metadata is not None else 0,
    }


def build(request: BuildRequest) -> dict[str, Any]:
    """Run the whole build; returns the report. Raises SourceError, ConfigError, Output*/BuildError.

    The report's `peak_anon_bytes` is the highest anonymous memory (RssAnon) the build held, the
    figure to size `build.resources.limits.memory` from (builder/anon_memory.py)."""
    with anon_memory.PeakAnonMemory() as peak:
        return _build(request, progress_lines.Progress(peak, on_line=request.on_progress), peak)


def _build(
    request: BuildRequest, progress: progress_lines.Progress, peak: anon_memory.PeakAnonMemory
) -> dict[str, Any]:
    started = time.monotonic()
    out = request.out.absolute()
    if out.exists() and not request.overwrite:
        raise OutputExistsError(f"{out} already exists; pass --overwrite to replace it")
    resolved = settings.resolve_config(
        index_type=request.index_type, config=request.config, env=request.env, config_file=request.config_file
    )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
        downloads = Path(tempfile.mkdtemp(prefix=f".{out.name}.download-", dir=out.parent))
    except OSError as error:
        raise OutputError(f"cannot create a working directory beside {out}: {error}") from None
    try:
        progress("validate", 0, source=request.source)
        data = datasets.load_dataset(
            embeddings_uri=request.source, ids_uri=request.ids, metadata_uri=request.metadata,
            dimension=request.dimension, download_dir=downloads, policy=request.download,
            metadata_id_key=request.metadata_id_key, env=request.env,
        )
        quality = _inspect(request, data)
        queries, query_rows = _query_sample(request, data, downloads)
        progress("validate", 100, vectors=data.count, dimension=data.dimension, queries=len(queries))
        if request.on_input is not None:
            request.on_input(input_fields(data))

        build_started = time.monotonic()
        index = _build_index(request, resolved, data, progress, spill_dir=downloads)
        build_seconds = time.monotonic() - build_started

        progress("evaluate", 0)
        evaluated = _evaluate(request, index, data, queries, query_rows, progress)
        truth = evaluated.pop("_ground_truth")
        progress("evaluate", 100, recall=f"{evaluated['recall']:.4f}", p99_ms=f"{evaluated['p99_ms']:.3f}")

        progress("write", 0, artifact=out)
        report = {
            "status": "Succeeded",
            "revision": request.revision,
            "vectors": index.ntotal,
            "dimension": data.dimension,
            "index_type": resolved.index_type,
            "config": resolved.config.model_dump(mode="json"),
            # What was built and measured: nlist/m_pq as chosen from the data, nprobe <= nlist.
            "effective_config": index.effective_config(),
            "config_sources": dict(resolved.sources),
            "metric": request.metric,
            "normalize": request.normalize,
            # Degenerate data the build passed with (index/data_quality.py): kept in the
            # termination message, from which the controller makes a Warning Event.
            "data_quality": quality.report(),
            **evaluated,
            "memory_bytes": None,  # the size of the saved index.faiss, once written
            "peak_anon_bytes": None,  # measured once the artifact's files are written
            "build_seconds": round(build_seconds, 3),
            "total_seconds": round(time.monotonic() - started, 3),
            "source": request.source,
            "artifact": str(out),
        }
        report["queries_from_input"] = query_rows is not None
        _write_artifact(staging, index, queries, query_rows, truth, report, request, peak)
        _move_into_place(staging, out, overwrite=request.overwrite)
        progress("write", 100, artifact=out)
        return report
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(downloads, ignore_errors=True)


def _inspect(request: BuildRequest, data: datasets.Dataset) -> data_quality.DataQuality:
    """Count the degenerate data; refuse what the metric cannot rank (the rule of data_quality)."""
    quality = data_quality.inspect(data.embeddings)
    if request.normalize and quality.near_zero_norm_vectors:
        raise source_errors.DegenerateVectorsError(
            f"{request.source}: {quality.near_zero_norm_vectors} of {quality.vectors} vectors have an L2 norm below "
            f"{data_quality.NEAR_ZERO_NORM:g} (the first is row {quality.first_near_zero}): no direction, so cosine "
            "similarity (normalize) cannot rank them; remove them or build without normalize"
        )
    for warning in quality.warnings():
        logger.warning("Degenerate data: %s", warning)
    return quality


def _query_sample(
    request: BuildRequest, data: datasets.Dataset, downloads: Path
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64] | None]:
    """The held-out queries (--queries), or a seeded sample of the input's own vectors with the
    rows they were taken from (evaluation then leaves each query's own row out)."""
    if request.queries is not None:
        path = datasets.materialize(request.queries, download_dir=downloads, policy=request.download, env=request.env)
        given = embeddings_io.open_embeddings(path, name=request.queries)
        embeddings_io.check_dimension(given, data.dimension, name=request.queries)
        embeddings_io.check_finite(given, name=request.queries)
        return np.asarray(given[: request.eval_queries], dtype=np.float32), None
    count = min(request.eval_queries, data.count)
    rng = np.random.default_rng(request.seed)
    rows = np.sort(rng.choice(data.count, size=count, replace=False)).astype(np.int64)
    return np.asarray(data.embeddings[rows], dtype=np.float32), rows


def _build_index(
    request: BuildRequest, resolved: settings.ResolvedConfig, data: datasets.Dataset,
    progress: progress_lines.Progress, *, spill_dir: Path,
) -> FAISSIndex:
    """Create the index for all the input's vectors, train it on a bounded sample, then add
    the input chunk by chunk (a progress line each)."""
    try:
        index = FAISSIndex(
            data.dimension, resolved.index_type, resolved.config.model_dump(), env={},
            metric=request.metric, normalize=request.normalize,
        )
    except ValueError as error:
        raise BuildError(f"cannot create the index: {error}") from None
    total = data.count
    plan = index.plan_build(total)
    if plan.needs_training:
        _train(request, index, data, plan, progress, spill_dir=spill_dir)
    else:
        index.create(num_vectors=total)
    index.reserve(total)  # after the training sample is gone: the two are never held together
    for start, vectors in chunks.float32_chunks(data.embeddings, chunk_rows=ADD_CHUNK_ROWS):
        progress.rows("add", start, total)
        end = start + len(vectors)
        ids = data.ids[start:end] if data.ids is not None else None
        metadata = data.metadata[start:end] if data.metadata is not None else None
        try:
            index.add_embeddings(vectors, ids=ids, metadata=metadata)
        except (ValueError, RuntimeError) as error:
            raise BuildError(f"adding vectors {start}..{end}: {error}") from None
    progress.rows("add", total, total)
    return index


def _train(
    request: BuildRequest, index: FAISSIndex, data: datasets.Dataset, plan: factory.BuildPlan,
    progress: progress_lines.Progress, *, spill_dir: Path,
) -> None:
    progress("train", 0, factory=plan.factory, sample=plan.training_vectors, vectors=data.count)
    started = time.monotonic()
    try:
        with training_sample.training_sample(
            data.embeddings, plan.training_vectors, seed=request.seed, normalize=request.normalize,
            spill_dir=spill_dir,
        ) as sample:
            index.create(
                num_vectors=data.count, training_sample=sample, seed=request.seed,
                on_training_iteration=lambda done, iterations, objective: progress(
                    "train", 100 * done / iterations, factory=plan.factory, iteration=f"{done}/{iterations}",
                    objective=objective, seconds=f"{time.monotonic() - started:.1f}",
                ),
            )
    except index_config.ConfigError:
        raise
    except (ValueError, RuntimeError) as error:
        raise BuildError(f"training {plan.factory} on {plan.training_vectors} vectors: {error}") from None
    progress("train", 100, factory=plan.factory, sample=plan.training_vectors,
             seconds=f"{time.monotonic() - started:.1f}")


def _evaluate(
    request: BuildRequest,
    index: FAISSIndex,
    data: datasets.Dataset,
    queries: npt.NDArray[np.float32],
    query_rows: npt.NDArray[np.int64] | None,
    progress: progress_lines.Progress,
) -> dict[str, Any]:
    # A query sampled from the input finds itself at distance 0 in both the exact and the
    # approximate answer, which would inflate recall; so search one deeper and leave it out.
    own_row = 0 if query_rows is None else 1
    k = min(request.k, data.count - own_row)
    if k < 1:
        raise BuildError(f"too few vectors ({data.count}) to evaluate recall without the query's own row")
    # Exact search over the memory-mapped input, a chunk at a time: never a copy of the base.
    truth = ground_truth.exact_neighbors(
        data.embeddings, queries, k + own_row, index.metric, normalize=index.normalize,
        chunk_rows=ADD_CHUNK_ROWS, on_chunk=lambda done, total: progress.rows("truth", done, total),
    )
    _, found = index.search_arrays(queries, k + own_row)
    if query_rows is not None:
        truth, found = _without_rows(truth, query_rows, k), _without_rows(found, query_rows, k)
    recall = evaluation.recall_at_k(found, truth, k)
    latency = evaluation.single_query_latency(index, queries, k)
    return {
        "k": k,
        "eval_queries": len(queries),
        "recall": round(float(recall), 6),
        "p50_ms": round(latency.p50_ms, 4),
        "p90_ms": round(latency.p90_ms, 4),
        "p99_ms": round(latency.p99_ms, 4),
        "_ground_truth": truth,
    }


def _without_rows(neighbors: npt.NDArray[np.int64], rows: npt.NDArray[np.int64], k: int) -> npt.NDArray[np.int64]:
    """Each query's first k neighbours other than its own row; the live prober leaves it out alike."""
    return np.asarray(evaluation.without_own(neighbors.tolist(), rows.tolist(), k), dtype=np.int64).reshape(-1, k)


def _write_artifact(
    staging: Path,
    index: FAISSIndex,
    queries: npt.NDArray[np.float32],
    query_rows: npt.NDArray[np.int64] | None,
    truth: npt.NDArray[np.int64],
    report: dict[str, Any],
    request: BuildRequest,
    peak: anon_memory.PeakAnonMemory,
) -> None:
    try:
        index.write_files(staging)  # the manifest comes last, once, below
        # The serialized size is what a serving replica holds; reading it off the file spares
        # serializing a second in-memory copy (1.5 GB at 1M x 384).
        report["memory_bytes"] = (staging / faiss_index.INDEX_FILE).stat().st_size
        np.save(staging / artifact.QUERIES_FILE, queries)
        if query_rows is not None:
            # The ground truth leaves each query's own row out; a live probe must do the same.
            np.save(staging / artifact.QUERY_ROWS_FILE, query_rows)
        np.save(staging / artifact.GROUND_TRUTH_FILE, truth.astype(np.int64))
        truth_ids = index.external_ids(truth)
        (staging / artifact.GROUND_TRUTH_IDS_FILE).write_text(json.dumps(truth_ids))
        # The peak through writing the index, ids, metadata and ground truth; only the report and
        # the manifest (a few KiB) come after.
        report["peak_anon_bytes"] = peak.sample()
        (staging / artifact.REPORT_FILE).write_text(json.dumps(report, indent=2, sort_keys=True, default=str))
        evaluation = {"k": report["k"], "queries": report["eval_queries"], "recall": report["recall"]}
        artifact.write_manifest(staging, **index.manifest_fields(), revision=request.revision, evaluation=evaluation)
        _fsync_tree(staging)
        staging.chmod(0o755)  # mkdtemp makes it 0700; serving pods may run as another user
    except OSError as error:
        raise OutputError(f"cannot write the artifact: {error}") from None


def _fsync_tree(directory: Path) -> None:
    for path in directory.iterdir():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _move_into_place(staging: Path, out: Path, *, overwrite: bool) -> None:
    if not out.exists():
        try:
            os.rename(staging, out)
        except OSError as error:
            raise OutputError(f"cannot move the artifact into place at {out}: {error}") from None
        return
    if not overwrite:
        raise OutputExistsError(f"{out} appeared while building; not replacing it")
    retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent)) / out.name
    try:
        os.rename(out, retired)
        try:
            os.rename(staging, out)
        except OSError:
            os.rename(retired, out)  # put the old artifact back rather than leave none
            raise
    except OSError as error:
        raise OutputError(f"cannot move the artifact into place at {out}: {error}") from None
    finally:
        shutil.rmtree(retired.parent, ignore_errors=True)
