"""Revision names: stable hashes of what defines the index, and only of that."""

from __future__ import annotations

from typing import Any

import pytest
from faiss_operator.api import resource
from faiss_operator.controller.decision import revisions
from faiss_operator.controller.decision import settings as operator_settings

from tests.controller.builders import SETTINGS, spec, with_config


def desired(wire: dict[str, Any], settings: operator_settings.OperatorSettings = SETTINGS) -> revisions.DesiredRevision:
    return revisions.desired_revision(resource.parse_spec(wire), settings, index_name="alerts")


BASE = desired(spec())


def test_the_same_spec_always_gives_the_same_short_name() -> None:
    assert desired(spec()) == BASE
    assert len(BASE.name) == revisions.HASH_LENGTH and BASE.name.isalnum()


@pytest.mark.parametrize(
    "changed",
    [
        {"dimension": 16},
        {"metric": "InnerProduct"},
        {"normalize": True},
        {"indexType": "Flat", "config": {}},
        {"source": {"uri": "pvc://embeddings/alerts/v2.npy"}},
        {"source": {"uri": "pvc://embeddings/alerts/v1.npy", "idsUri": "pvc://embeddings/ids"}},
        {"evaluation": {"k": 20}},
        {"build": {"image": "builder:2"}},
    ],
    ids=lambda c: ",".join(c),
)
def test_index_defining_fields_make_a_new_artifact(changed: dict[str, Any]) -> None:
    other = desired(spec(**changed))
    assert other.name != BASE.name and other.artifact_key != BASE.artifact_key


def test_build_time_config_makes_a_new_artifact() -> None:
    assert desired(with_config(spec(), efConstruction=300)).artifact_key != BASE.artifact_key


@pytest.mark.parametrize(
    "wire", [with_config(spec(), efSearch=128), with_config(spec(indexType="IVF", config={}), nprobe=20)]
)
def test_search_time_parameters_make_a_revision_that_reuses_the_artifact(wire: dict[str, Any]) -> None:
    base = desired({**wire, "config": {k: v for k, v in wire["config"].items() if k not in ("efSearch", "nprobe")}})
    other = desired(wire)
    assert other.name != base.name and other.artifact_key == base.artifact_key


@pytest.mark.parametrize(
    "changed",
    [
        {"serving": {"replicas": 9, "image": "server:2", "port": 9000, "resources": {"limits": {"cpu": 4}}}},
        {"rollout": {"steps": [{"weight": 50}], "autoRollback": False}},
        {"evaluation": {"k": 10, "queries": 100, "minRecall": 0.5}},
        {"paused": True},
    ],
    ids=lambda c: ",".join(c),
)
def test_serving_rollout_and_gate_fields_never_make_a_revision(changed: dict[str, Any]) -> None:
    assert desired(spec(**changed)).name == BASE.name


def test_an_explicit_default_value_is_the_same_revision_as_leaving_it_out() -> None:
    implicit = desired(spec(config={"m": 32}))
    explicit = desired(spec(config={"m": 32, "efConstruction": 200, "efSearch": 64}))
    assert implicit == explicit


def test_the_operator_environment_fills_what_the_spec_leaves_out() -> None:
    settings = operator_settings.OperatorSettings.from_environment(
        {
            "FAISS_INDEX_TYPE": "IVF",
            "FAISS_NLIST": "256",
            "FAISS_CONFIG_TRAIN_SIZE": "5000",
            "FAISS_OPERATOR_IMAGE": "op:9",
            "HOME": "/root",
        }
    )
    assert settings.image == "op:9" and "HOME" not in settings.index_env
    wire = {k: v for k, v in spec().items() if k not in ("indexType", "config")}
    revision = desired(wire, settings)
    assert (revision.index_type, revision.config.to_wire()) == ("IVF", {"nlist": 256, "nprobe": 10, "trainSize": 5000})
    assert revision.build_config == {"nlist": 256, "nprobe": 10, "train_size": 5000}
    assert revision.search_params == {"nprobe": 10}
    assert revision.builder_image == "op:9"
    # The spec's own values win over the environment.
    assert desired({**wire, "config": {"nlist": 64}}, settings).config.nlist == 64


def test_a_config_file_named_in_the_environment_is_never_read() -> None:
    settings = operator_settings.OperatorSettings(image="i", index_env={"FAISS_CONFIG_FILE": "/nonexistent.yaml"})
    assert desired(spec(), settings).config == BASE.config


def test_a_bad_environment_value_is_a_spec_error_naming_the_field_and_the_variable() -> None:
    settings = operator_settings.OperatorSettings(image="i", index_env={"FAISS_CONFIG_EF_SEARCH": "lots"})
    with pytest.raises(resource.SpecError) as refused:
        desired(spec(config={"m": 16}), settings)
    assert str(refused.value) == (
        "spec.config.efSearch: Input should be a valid integer, unable to parse string as an integer "
        "(got 'lots') [efSearch from env:FAISS_CONFIG_EF_SEARCH]"
    )


def test_an_environment_value_the_specs_config_rules_out_names_both_by_their_resource_names() -> None:
    settings = operator_settings.OperatorSettings(
        image="i", index_env={"FAISS_INDEX_TYPE": "OPQ+HNSW", "FAISS_CONFIG_M_PQ": "7"}
    )
    with pytest.raises(resource.SpecError) as refused:
        desired(spec(indexType=None, config={"encoding": "SQ6"}), settings)
    assert str(refused.value) == (
        "spec.config.mPq: used only with encoding PQ (OPQ rotation + PQ codes), but the encoding is SQ6; "
        "set encoding PQ, or remove config.mPq [mPq from env:FAISS_CONFIG_M_PQ]"
    )


def test_the_build_job_evaluates_with_the_revisions_search_parameters() -> None:
    wire = with_config(spec(), efSearch=16)
    revision = desired(wire)
    assert revision.build_config["ef_search"] == 16


def test_an_operator_upgrade_keeps_every_revision_that_leaves_the_builder_image_out() -> None:
    old = desired(spec(), operator_settings.OperatorSettings(image="registry.example/faiss-operator:0.1.0"))
    new = desired(spec(), operator_settings.OperatorSettings(image="registry.example/faiss-operator:0.2.0"))
    assert (new.name, new.artifact_key) == (old.name, old.artifact_key)
    # The Job still runs the operator's image of the day.
    assert new.builder_image == "registry.example/faiss-operator:0.2.0"


def test_a_builder_image_the_user_sets_defines_the_revision_whatever_the_operator_image() -> None:
    chosen = spec(build={"image": "builder:2"})
    old = desired(chosen, operator_settings.OperatorSettings(image="registry.example/faiss-operator:0.1.0"))
    new = desired(chosen, operator_settings.OperatorSettings(image="registry.example/faiss-operator:0.2.0"))
    assert (new.name, new.artifact_key, new.builder_image) == (old.name, old.artifact_key, "builder:2")
    assert new.artifact_key != BASE.artifact_key
    assert desired(spec(build={"image": "builder:3"})).name != new.name
