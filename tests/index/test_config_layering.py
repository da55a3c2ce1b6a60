"""Config layering: argument > environment > YAML file (seed and v0.8 shapes) > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from faiss_operator.index import ConfigError, FAISSIndex, settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "faiss.yaml"
    path.write_text(text)
    return path


SEED_YAML = """
faiss:
  index_type: HNSW
  device: cpu
  config:
    m: 48
    ef_construction: 300
    ef_search: 96
"""

V08_YAML = """
faiss:
  nlist: 256
  nprobe: 12
"""

V08_TOP_LEVEL_YAML = """
nlist: 128
nprobe: 6
"""


def test_defaults_when_nothing_is_set() -> None:
    resolved = settings.resolve_config(env={})
    assert resolved.index_type == "HNSW"
    assert resolved.config.model_dump(exclude={"index_type"}) == {"m": 32, "ef_construction": 200, "ef_search": 64}
    assert set(resolved.sources.values()) == {"default"}


def test_seed_yaml_shape_is_read(tmp_path: Path) -> None:
    path = write(tmp_path, SEED_YAML)
    resolved = settings.resolve_config(env={}, config_file=path)
    assert resolved.index_type == "HNSW"
    assert (resolved.config.m, resolved.config.ef_construction, resolved.config.ef_search) == (48, 300, 96)  # type: ignore[union-attr]
    assert resolved.sources["m"] == f"file:{path}"


@pytest.mark.parametrize("text", [V08_YAML, V08_TOP_LEVEL_YAML])
def test_v08_shape_means_ivf_with_its_nlist_and_nprobe(tmp_path: Path, text: str) -> None:
    resolved = settings.resolve_config(env={}, config_file=write(tmp_path, text))
    assert resolved.index_type == "IVF"
    assert resolved.config.model_dump()["nlist"] in (256, 128)
    assert resolved.config.model_dump()["nprobe"] in (12, 6)


def test_environment_beats_the_file_and_arguments_beat_both(tmp_path: Path) -> None:
    path = write(tmp_path, SEED_YAML)
    env = {"FAISS_CONFIG_EF_SEARCH": "200", "FAISS_CONFIG_M": "24", "FAISS_CONFIG_FILE": str(path)}
    resolved = settings.resolve_config(config={"m": 8}, env=env)
    values = resolved.config.model_dump()
    assert (values["m"], values["ef_search"], values["ef_construction"]) == (8, 200, 300)
    assert resolved.sources == {
        "index_type": f"file:{path}",
        "m": "argument",
        "ef_search": "env:FAISS_CONFIG_EF_SEARCH",
        "ef_construction": f"file:{path}",
    }


def test_legacy_environment_variables_set_ivf(tmp_path: Path) -> None:
    env = {"FAISS_INDEX_TYPE": "IVF", "FAISS_NLIST": "64", "FAISS_NPROBE": "5"}
    resolved = settings.resolve_config(env=env)
    assert resolved.config.model_dump()["nlist"] == 64
    assert resolved.sources["nprobe"] == "env:FAISS_NPROBE"


def test_opq_hnsw_keys_come_from_the_environment() -> None:
    env = {
        "FAISS_INDEX_TYPE": "OPQ+HNSW",
        "FAISS_CONFIG_ENCODING": "PQ",
        "FAISS_CONFIG_M_PQ": "48",
        "FAISS_CONFIG_N_SUBQUANTIZERS": "48",
        "FAISS_CONFIG_M_HNSW": "24",
    }
    values = settings.resolve_config(env=env).config.model_dump(mode="json")
    assert (values["encoding"], values["m_pq"], values["n_subquantizers"], values["m_hnsw"]) == ("PQ", 48, 48, 24)


def test_environment_keys_of_another_type_are_ignored() -> None:
    resolved = settings.resolve_config(index_type="HNSW", env={"FAISS_NLIST": "64", "FAISS_CONFIG_M": "12"})
    assert resolved.config.model_dump()["m"] == 12
    assert "nlist" not in resolved.sources


def test_a_file_for_another_type_does_not_leak_into_the_chosen_one(tmp_path: Path) -> None:
    resolved = settings.resolve_config(index_type="IVF", env={}, config_file=write(tmp_path, SEED_YAML))
    assert resolved.index_type == "IVF"
    assert resolved.sources["nprobe"] == "default"


def test_faiss_index_uses_the_layers(tmp_path: Path) -> None:
    index = FAISSIndex(dimension=8, env={"FAISS_CONFIG_FILE": str(write(tmp_path, V08_YAML)), "FAISS_NPROBE": "3"})
    assert index.index_type == "IVF"
    assert index.config.model_dump()["nprobe"] == 3
    assert index.config_sources["nlist"].startswith("file:")


@pytest.mark.parametrize(
    ("env", "text", "message"),
    [
        ({"FAISS_INDEX_TYPE": "Annoy"}, None, "unknown index type 'Annoy'.*\\[from env:FAISS_INDEX_TYPE\\]"),
        ({"FAISS_CONFIG_EF_SEARCH": "fast"}, None, "config.ef_search: Input should be a valid integer.*\\[ef_search from env:FAISS_CONFIG_EF_SEARCH\\]"),
        ({"FAISS_CONFIG_M": "1"}, None, "config.m: Input should be greater than or equal to 2"),
        ({"FAISS_CONFIG_M": " "}, None, "FAISS_CONFIG_M: empty value"),
        ({}, "faiss: [1, 2]", "'faiss' must be a mapping"),
        ({}, "faiss: {device: cuda}", "faiss.device 'cuda' is not supported"),
        ({}, "faiss: {config: {m: 16, bogus: 1}}", "config.bogus: unknown key for index type 'HNSW'.*bogus from file:"),
        ({}, "faiss: {index_type: HNSW, config: {nlist: 16}}", "config.nlist: not a parameter of index type 'HNSW'"),
        ({}, "faiss: {index_type: [HNSW]}", "faiss.index_type must be a string"),
        ({}, "faiss: {config: [1]}", "faiss.config must be a mapping"),
        ({}, ": : :", "not valid YAML"),
        ({}, "- 1", "expected a mapping with a 'faiss' key"),
        ({}, "faiss: {config: {ef_search: true}}", "config.ef_search: expected a number, got the boolean True"),
    ],
)
def test_bad_layers_are_clear_errors(tmp_path: Path, env: dict[str, str], text: str | None, message: str) -> None:
    path = write(tmp_path, text) if text is not None else None
    with pytest.raises(ConfigError, match=message):
        settings.resolve_config(env=env, config_file=path)


def test_a_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        settings.resolve_config(env={}, config_file=tmp_path / "absent.yaml")


def test_describe_lists_every_key_with_its_source() -> None:
    text = settings.resolve_config(config={"ef_search": 10}, env={}).describe()
    assert "ef_search = 10  (argument)" in text
    assert "m = 32  (default)" in text


def test_a_config_file_saved_with_a_bom_and_crlf_reads_the_same(tmp_path: Path) -> None:
    path = tmp_path / "faiss.yaml"
    path.write_bytes(b"\xef\xbb\xbffaiss:\r\n  index_type: IVF\r\n  config: {nlist: 4, nprobe: 2}\r\n\r\n")
    resolved = settings.resolve_config(env={}, config_file=path)
    assert resolved.index_type == "IVF" and resolved.config.model_dump()["nlist"] == 4
    assert resolved.sources["nprobe"] == f"file:{path}"


# --- one rule for the environment and the file (issue 19, item 4) ---


def test_a_v08_leftover_that_the_declared_type_lacks_is_refused_as_in_a_file(tmp_path: Path) -> None:
    env = {"FAISS_INDEX_TYPE": "HNSW", "FAISS_NLIST": "100"}
    with pytest.raises(ConfigError) as error:
        settings.resolve_config(env=env)
    assert str(error.value) == (
        "FAISS_NLIST: nlist is not a parameter of FAISS_INDEX_TYPE=HNSW (it belongs to IVF and IVFPQ); "
        "unset it or change FAISS_INDEX_TYPE"
    )
    with pytest.raises(ConfigError, match="config.nlist: not a parameter of index type 'HNSW'"):
        settings.resolve_config(env={}, config_file=write(tmp_path, "faiss: {index_type: HNSW, config: {nlist: 100}}\n"))


def test_a_misspelt_config_variable_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ConfigError) as error:
        settings.resolve_config(env={"FAISS_CONFIG_EFSEARCH": "64"})
    message = str(error.value)
    assert message.startswith("FAISS_CONFIG_EFSEARCH: 'efsearch' is not a parameter of any index type; known: ")
    assert "FAISS_CONFIG_EF_SEARCH" in message


def test_other_unknown_variables_are_reported_and_the_project_s_own_are_not() -> None:
    check = settings.check_environment({
        "FAISS_USE_GPU": "1", "FAISS_OPERATOR_IMAGE": "x", "FAISS_OPERATOR_K8S_BIN": "/b", "FAISS_PVC_ROOT": "/p",
        "FAISS_CONFIG_FILE": "/f.yaml", "FAISS_INDEX_TYPE": "IVF", "FAISS_NLIST": "64", "PATH": "/bin",
    })
    assert check == settings.EnvironmentCheck(
        errors=(), warnings=("FAISS_USE_GPU: not a variable faiss-operator reads (ignored)",)
    )
    assert settings.resolve_config(env={"FAISS_USE_GPU": "1"}).index_type == "HNSW"
