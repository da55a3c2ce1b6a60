"""`faiss-operator validate` says "all valid" only to what kubectl, the operator and the build accept.

Field reports (issue 19, items 1-3): Python names that the CRD does not have were accepted, specs
the operator or the build refuse later (an absolute claim path, a product quantizer that does not
divide the dimension) passed, only the first problem of a document was said, a repeated YAML key
was silently resolved, and `validate -f examples/` found nothing below the directory's top.
Each story states the whole output a user sees.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from faiss_operator import cli
from faiss_operator.api import resource, validate

from tests.api import samples

ROOT = Path(__file__).resolve().parents[2]


def _spec(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(samples.DESIGN_EXAMPLE)
    body["spec"].update(changes)
    return body


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, list[str]]:
    code = cli.main(["validate", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err.splitlines()


# --- 1. only the wire (camelCase) names ------------------------------------------------------------


def test_python_names_are_unknown_fields_that_name_the_wire_field() -> None:
    body = _spec(
        index_type="HNSW",
        source={"uri": "pvc://embeddings/a.npy", "ids_uri": "pvc://embeddings/ids.npy"},
        evaluation={"min_recall": 0.95, "k": 10},
        config={"ef_search": 64},
    )
    del body["spec"]["indexType"]
    assert validate.validate_object(body) == [
        ("spec.config.ef_search", "unknown field (did you mean efSearch?)"),
        ("spec.source.ids_uri", "unknown field (did you mean idsUri?)"),
        ("spec.evaluation.min_recall", "unknown field (did you mean minRecall?)"),
        ("spec.index_type", "unknown field (did you mean indexType?)"),
    ]


def test_the_operator_refuses_python_names_too_rather_than_dropping_the_gate() -> None:
    with pytest.raises(resource.SpecError) as error:
        resource.parse_spec(_spec(evaluation={"min_recall": 0.95})["spec"])
    assert str(error.value) == "spec.evaluation.min_recall: unknown field (did you mean minRecall?)"


def test_a_typo_is_matched_to_the_closest_field_and_a_stranger_to_none() -> None:
    body = _spec(evaluation={"minRecal": 0.95, "colour": "blue"})
    assert validate.validate_object(body) == [
        ("spec.evaluation.minRecal", "unknown field (did you mean minRecall?)"),
        ("spec.evaluation.colour", "unknown field"),
    ]


# --- 2. what the operator and the build refuse, said offline, all at once -------------------------


def test_a_product_quantizer_that_does_not_divide_the_dimension_is_refused() -> None:
    body = _spec(dimension=384, indexType="IVFPQ", config={"nlist": 100, "mPq": 7})
    assert validate.validate_object(body) == [
        ("spec.config.mPq", "7 does not divide the dimension 384; choose a divisor of 384"),
    ]


def test_an_opq_rotation_that_does_not_divide_the_dimension_is_refused() -> None:
    body = _spec(dimension=384, indexType="OPQ+HNSW", config={"mPq": 8, "nSubquantizers": 7})
    assert validate.validate_object(body) == [
        ("spec.config.nSubquantizers", "7 does not divide the dimension 384; choose a divisor of 384"),
    ]


def test_every_problem_of_a_document_is_reported_not_the_first_only() -> None:
    body = _spec(
        dimension=384,
        indexType="IVFPQ",
        config={"mPq": 7},
        source={"uri": "pvc://e//abs.npy"},
        evaluation={"min_recall": 0.9},
    )
    assert validate.validate_object(body) == [
        ("spec.config.mPq", "7 does not divide the dimension 384; choose a divisor of 384"),
        ("spec.source.uri", "a pvc:// path may neither contain a '..' segment nor start with '/' "
                            "(it must stay inside its claim)"),
        ("spec.evaluation.min_recall", "unknown field (did you mean minRecall?)"),
    ]


def test_a_repeated_key_is_an_error_naming_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "twice.yaml"
    path.write_text(
        "apiVersion: faiss.dev/v1alpha1\nkind: FaissIndex\nmetadata: {name: a}\nspec:\n"
        "  dimension: 8\n  source: {uri: 'file:///e.npy'}\n  evaluation:\n    minRecall: 0.99\n"
        "    minRecall: 0.5\n"
    )
    assert _run(capsys, "-f", str(path)) == (
        1,
        "0 FaissIndex checked in 1 file: 1 problem\n",
        [f"{path}: document 1: not valid YAML at line 9, column 5: mapping key 'minRecall' appears more than once"],
    )


def _examples() -> tuple[int, int, int]:
    """(files, FaissIndex objects, other objects) under examples/, at any depth."""
    files = [p for p in (ROOT / "examples").rglob("*") if p.suffix in (".yaml", ".yml", ".json")]
    kinds = [d.get("kind") for p in files for d in yaml.safe_load_all(p.read_text()) if d]
    return len(files), kinds.count("FaissIndex"), len(kinds) - kinds.count("FaissIndex")


def test_a_directory_is_read_with_its_subdirectories(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    (tmp_path / "examples" / "deeper" / "still").mkdir(parents=True)
    bad = _spec(serving={"replicas": 0})
    (tmp_path / "examples" / "deeper" / "still" / "bad.yaml").write_text(yaml.safe_dump(bad))
    files, indexes, others = _examples()
    code, out, err = _run(capsys, "-f", str(tmp_path / "examples"))
    assert (code, out) == (
        1, f"{indexes + 1} FaissIndex checked in {files + 1} files, {others} other objects skipped: 1 problem\n"
    )
    assert err == [
        f"{tmp_path}/examples/deeper/still/bad.yaml: document 1 (FaissIndex alerts): spec.serving.replicas: "
        "0 is less than the minimum of 1"
    ]


def test_the_readme_s_own_validate_command_passes(capsys: pytest.CaptureFixture[str]) -> None:
    files, indexes, others = _examples()
    assert indexes >= 8 and files > indexes  # the index types, the migration story, the storage objects
    assert _run(capsys, "-f", str(ROOT / "examples")) == (
        0, f"{indexes} FaissIndex checked in {files} files, {others} other objects skipped: all valid\n", []
    )


# --- 3. the seed's OPQ+HNSW keys take effect or are refused ----------------------------------------


def test_opq_keys_with_a_scalar_encoding_are_refused_with_the_reason() -> None:
    body = _spec(dimension=384, indexType="OPQ+HNSW", config={"encoding": "SQ6", "mPq": 8, "mHnsw": 16})
    assert validate.validate_object(body) == [
        ("spec.config.mPq", "used only with encoding PQ (OPQ rotation + PQ codes), but the encoding is SQ6; "
                            "set encoding PQ, or remove config.mPq"),
    ]


def test_the_seed_guide_s_opq_keys_are_valid_as_written() -> None:
    body = _spec(dimension=384, indexType="OPQ+HNSW", config={"mPq": 8, "nSubquantizers": 32, "mHnsw": 16})
    assert validate.validate_object(body) == []
