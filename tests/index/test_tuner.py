"""FAISSTuner: measures a grid, ranks it for a target, marks the Pareto front, round-trips JSON."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from faiss_operator.index import FAISSIndex, FAISSTuner, TuningError, TuningReport, TuningTarget, tuner

from .conftest import DIMENSION

SPACE = {"IVF": {"nprobe": [1, 8]}, "HNSW": {"m": [8], "ef_construction": [40], "ef_search": [8, 64]}}


@pytest.fixture(scope="module")
def report(dataset: tuple[np.ndarray, np.ndarray, np.ndarray]) -> TuningReport:
    base, queries, _ = dataset
    return FAISSTuner(dimension=DIMENSION).tune(
        base[:2000], queries, index_types=["IVF", "HNSW"], space=SPACE, target=TuningTarget(min_recall=0.9)
    )


def test_every_grid_point_is_measured_once(report: TuningReport) -> None:
    assert len(report) == 4
    assert {(r.index_type, r.config.get("nprobe") or r.config.get("ef_search")) for r in report} == {
        ("IVF", 1), ("IVF", 8), ("HNSW", 8), ("HNSW", 64)
    }
    assert all(0 <= r.recall_at_k <= 1 and r.memory_bytes > 0 and r.p99_ms > 0 for r in report)


def test_results_meeting_the_target_come_first_cheapest_by_memory(report: TuningReport) -> None:
    flags = [r.meets_target for r in report]
    assert flags == sorted(flags, reverse=True)
    meeting = [r for r in report if r.meets_target]
    assert meeting and [r.memory_bytes for r in meeting] == sorted(r.memory_bytes for r in meeting)
    assert report.best is report[0]
    assert all(r.recall_at_k >= 0.9 for r in meeting)


def test_pareto_front_holds_no_dominated_result(report: TuningReport) -> None:
    front = report.pareto_front
    assert front
    for result in report:
        dominated = any(
            o.recall_at_k >= result.recall_at_k and o.p99_ms <= result.p99_ms and o.memory_bytes <= result.memory_bytes
            and (o.recall_at_k, o.p99_ms, o.memory_bytes) != (result.recall_at_k, result.p99_ms, result.memory_bytes)
            for o in report
        )
        assert result.pareto == (not dominated)


def test_mark_pareto_on_a_table() -> None:
    def make(recall: float, p99: float, memory: int) -> tuner.TuningResult:
        return tuner.TuningResult("HNSW", {}, recall, p99, p99, memory, 1.0, 1.0, 1.0)

    marked = tuner.mark_pareto([make(0.9, 1.0, 100), make(0.95, 2.0, 100), make(0.9, 2.0, 100), make(0.8, 0.5, 50)])
    assert [r.pareto for r in marked] == [True, True, False, True]


def test_report_round_trips_through_json_and_builds_an_index(report: TuningReport) -> None:
    restored = TuningReport.from_json(report.to_json())
    assert restored == report
    best = restored.best
    assert best is not None
    index = FAISSIndex.from_tuning_result(dimension=DIMENSION, tuning_result=best)
    assert index.index_type == best.index_type
    assert index.config.model_dump(mode="json", exclude={"index_type"}) == best.config
    index_from_dict = FAISSIndex.from_tuning_result(dimension=DIMENSION, tuning_result=best.to_dict())
    assert index_from_dict.config == index.config


def test_without_data_the_tuner_generates_a_sample() -> None:
    report = FAISSTuner(dimension=16).tune(
        index_types=["Flat"], sample_size=300, num_queries=20, target_recall=0.99
    )
    assert report.data == "generated:clustered:300"
    assert report.num_vectors == 300
    assert report[0].recall_at_k == 1.0
    assert report.best is not None


def test_optimising_for_latency_orders_by_p99(report: TuningReport) -> None:
    ranked = tuner.rank(list(report), TuningTarget(min_recall=0.0 + 1e-9, optimize="latency"))
    assert [r.p99_ms for r in ranked] == sorted(r.p99_ms for r in ranked)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda t: t.tune(index_types=["Nope"], sample_size=100, num_queries=10), "unknown index type 'Nope'"),
        (lambda t: t.tune(index_types=["HNSW"], space={"HNSW": {"nprobe": [1]}}, sample_size=100, num_queries=10),
         "space.HNSW.nprobe: not a parameter of HNSW"),
        (lambda t: t.tune(index_types=["HNSW"], space={"HNSW": {"m": []}}, sample_size=100, num_queries=10),
         "space.HNSW.m: expected a non-empty list"),
        (lambda t: t.tune(index_types=["HNSW"], space={"IVF": {"nprobe": [1]}}, sample_size=100, num_queries=10),
         "space: index types IVF are not among the tuned types"),
        (lambda t: t.tune(np.zeros((10, 3), np.float32)), "embeddings: expected shape \\(n, 16\\)"),
        (lambda t: t.tune(np.zeros((10, 16), np.float32), num_queries=10), "leave none after holding out 10"),
        (lambda t: t.tune(sample_size=10, num_queries=10), "sample_size \\(10\\) must be at least twice"),
        (lambda t: t.tune(target_recall=1.5), "min_recall: expected a value in \\(0, 1\\]"),
    ],
)
def test_bad_tuning_requests_are_refused(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call(FAISSTuner(dimension=16))  # type: ignore[operator]


def test_bad_targets_and_reports_are_refused() -> None:
    with pytest.raises(TuningError, match="optimize: expected one of memory, latency"):
        TuningTarget(optimize="cost")  # type: ignore[arg-type]
    with pytest.raises(TuningError, match="not a report written by FAISSTuner"):
        TuningReport.from_json("[1, 2]")
    with pytest.raises(TuningError, match="missing fields"):
        tuner.TuningResult.from_dict({"index_type": "HNSW"})
    with pytest.raises(TuningError, match="dimension: expected a positive integer"):
        FAISSTuner(dimension=0)


def test_results_are_frozen(report: TuningReport) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        report[0].recall_at_k = 1.0  # type: ignore[misc]
