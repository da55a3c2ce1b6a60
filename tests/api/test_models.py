"""The resource models: camelCase on the wire, snake_case in Python, and clear refusals."""

from __future__ import annotations

import datetime

import pytest
from faiss_operator.api import naming, resource
from faiss_operator.api import spec as api_spec
from faiss_operator.api import status as api_status
from faiss_operator.index import config as index_config

from tests.api import samples


@pytest.mark.parametrize(
    ("snake", "camel"),
    [
        ("ef_construction", "efConstruction"),
        ("p99_latency_ms", "p99LatencyMs"),
        ("m", "m"),
        ("m_pq", "mPq"),
        ("n_subquantizers", "nSubquantizers"),
        ("revision_history_limit", "revisionHistoryLimit"),
    ],
)
def test_one_mapping_between_snake_and_camel(snake: str, camel: str) -> None:
    assert naming.to_camel(snake) == camel


def test_every_index_config_key_crosses_the_boundary_and_back() -> None:
    # One typed model per index type: snake_case in Python, its camelCase alias on the resource.
    for index_type in index_config.INDEX_TYPES:
        keys = index_config.config_keys(index_type)
        assert index_config.wire_config_keys(index_type) == [naming.to_camel(key) for key in keys]
        typed = index_config.parse_config(index_type, {})
        assert index_config.parse_wire_config(index_type, typed.to_wire()) == typed


def test_an_unknown_wire_config_key_is_named() -> None:
    with pytest.raises(
        index_config.ConfigError,
        match=r"config\.efSerch: not a parameter of indexType HNSW; valid keys: efConstruction, efSearch, m$",
    ):
        api_spec.check_config("HNSW", {"efSerch": 3})


def test_the_spec_holds_the_typed_config_of_its_index_type() -> None:
    spec = resource.parse_spec({**samples.DESIGN_EXAMPLE["spec"], "indexType": "IVF", "config": {"nlist": 4}})
    assert spec.config == index_config.IVFConfig(nlist=4, nprobe=4)
    # Written back as written: the defaults the model fills in are not part of the spec.
    assert spec.to_wire()["config"] == {"nlist": 4}


def test_the_design_example_reads_in_snake_case_and_writes_back_in_camel_case() -> None:
    spec = resource.parse_spec(samples.DESIGN_EXAMPLE["spec"])
    assert spec.evaluation.min_recall == 0.95
    assert spec.rollout.steps[0].pause_seconds == 60
    wire = spec.to_wire()
    assert wire["config"] == {"m": 32, "efConstruction": 200, "efSearch": 64}
    assert wire["evaluation"] == {"k": 10, "queries": 1000, "minRecall": 0.95, "maxP99LatencyMs": 2.0}
    assert wire["rollout"]["steps"] == [{"weight": 25, "pauseSeconds": 60}, {"weight": 50, "pauseSeconds": 60}]
    assert resource.parse_spec(wire) == spec


def test_defaults_fill_what_a_spec_leaves_out() -> None:
    spec = resource.parse_spec({"dimension": 8, "source": {"uri": "file:///x.npy"}})
    assert spec.index_type is None  # the operator's FAISS_INDEX_TYPE (else HNSW) decides
    assert (spec.metric, spec.normalize, spec.paused) == (index_config.Metric.L2, False, False)
    assert spec.artifacts.uri == "pvc://faiss-artifacts"
    assert (spec.evaluation.k, spec.evaluation.queries) == (10, 1000)
    assert (spec.serving.replicas, spec.serving.port) == (2, 8080)
    rollout = spec.rollout
    assert (rollout.steps, rollout.auto_rollback, rollout.on_failure) == ([], True, "Abort")
    assert (rollout.progress_deadline_seconds, rollout.scale_down_delay_seconds, rollout.revision_history_limit) == (
        600,
        30,
        3,
    )
    assert (spec.build.active_deadline_seconds, spec.build.backoff_limit) == (3600, 1)


@pytest.mark.parametrize("name", sorted(samples.GOOD))
def test_good_samples_are_accepted(name: str) -> None:
    resource.parse_spec(samples.GOOD[name]["spec"])


@pytest.mark.parametrize("name", sorted(samples.BAD))
def test_bad_samples_are_refused_naming_the_field(name: str) -> None:
    bad = samples.BAD[name]
    with pytest.raises(resource.SpecError) as error:
        resource.parse_spec(bad.body["spec"])
    assert bad.message in str(error.value)


def test_an_unknown_field_is_refused() -> None:
    # An unknown field says so; `replicas` is a field of spec.serving, not of spec, so no suggestion.
    with pytest.raises(resource.SpecError, match=r"^spec.replicas: unknown field$"):
        resource.parse_spec({**samples.DESIGN_EXAMPLE["spec"], "replicas": 3})


def test_check_config_maps_value_errors_to_camel_case() -> None:
    with pytest.raises(index_config.ConfigError, match=r"config\.efConstruction"):
        api_spec.check_config("HNSW", {"efConstruction": 0})


def test_status_round_trips_with_rfc3339_timestamps() -> None:
    when = datetime.datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=datetime.timezone.utc)
    status = api_status.FaissIndexStatus(
        phase="Progressing",
        current_revision="a",
        rollout=api_status.RolloutStatus(mode="Canary", step=1, weight=50, step_started_at=when),
        revisions=[
            api_status.RevisionStatus(
                name="a",
                index_type="HNSW",
                config={"efSearch": 64},
                artifact="pvc://x/a",
                artifact_key="k",
                state="Active",
                created_at=when,
            )
        ],
    )
    wire = status.to_wire()
    assert wire["rollout"]["stepStartedAt"] == "2026-01-02T03:04:05Z"
    assert wire["revisions"][0]["createdAt"] == "2026-01-02T03:04:05Z"
    assert wire["currentRevision"] == "a"
    assert api_status.FaissIndexStatus.model_validate(wire) == status


def test_resource_from_body_reads_metadata() -> None:
    body = {
        **samples.DESIGN_EXAMPLE,
        "metadata": {
            "name": "alerts",
            "namespace": "search",
            "uid": "u",
            "generation": 4,
            "annotations": {"faiss.dev/promote": "true"},
            "finalizers": ["faiss.dev/cleanup"],
            "deletionTimestamp": "2026-01-01T00:00:00Z",
        },
    }
    parsed = resource.Resource.from_body(body)
    assert (parsed.name, parsed.namespace, parsed.generation, parsed.finalizers) == (
        "alerts",
        "search",
        4,
        ("faiss.dev/cleanup",),
    )
    assert parsed.annotations == {"faiss.dev/promote": "true"}
    assert parsed.deletion_timestamp == datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


def test_a_typed_config_of_another_index_type_is_refused() -> None:
    with pytest.raises(ValueError, match="a config of index type HNSW given with indexType IVF"):
        api_spec.FaissIndexSpec(
            dimension=8, index_type="IVF", config=index_config.HNSWConfig(), source=api_spec.SourceSpec(uri="file:///x")
        )
