"""`faiss-operator validate`: FaissIndex files judged offline as the API server and operator would.

Stories with whole expected outputs (what a CI log shows), then every sample of tests/api/samples.py
through each check, then the inputs a pipeline can get wrong (unreadable files, broken YAML, no
FaissIndex at all).
"""

from __future__ import annotations

import copy
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from faiss_operator import cli
from faiss_operator.api import validate

from tests.api import samples

BIN = Path(sys.executable).parent


def _write(path: Path, *documents: Any) -> Path:
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    return path


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, list[str]]:
    code = cli.main(["validate", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err.splitlines()


def _named(name: str, body: dict[str, Any]) -> dict[str, Any]:
    body = copy.deepcopy(body)
    body["metadata"] = {"name": name}
    return body


CONFIG_MAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"a": "b"}}


def test_a_pipeline_with_good_files_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one = _write(tmp_path / "one.yaml", samples.DESIGN_EXAMPLE, CONFIG_MAP)
    listed = _write(
        tmp_path / "list.yaml",
        {
            "apiVersion": "v1",
            "kind": "List",
            "items": [_named(f"i{n}", body) for n, body in enumerate(samples.GOOD.values())],
        },
    )
    code, out, err = _run(capsys, "-f", str(one), "-f", str(listed))
    assert (code, out, err) == (
        0,
        f"{len(samples.GOOD) + 1} FaissIndex checked in 2 files, 1 other object skipped: all valid\n",
        [],
    )


def test_a_pipeline_with_bad_documents_names_each_file_document_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hnsw_with_nprobe = _named("alerts", samples.BAD["an HNSW config with nprobe"].body)
    no_source = _named("tiny", samples.BAD["no source"].body)
    bad_name = _named("Alerts_V2", samples.DESIGN_EXAMPLE)
    old_version = {**_named("old", samples.DESIGN_EXAMPLE), "apiVersion": "faiss.dev/v1"}
    path = _write(tmp_path / "indexes.yaml", samples.DESIGN_EXAMPLE, hnsw_with_nprobe, CONFIG_MAP, no_source)
    other = _write(tmp_path / "more.yaml", bad_name, old_version)
    code, out, err = _run(capsys, "-f", str(path), "-f", str(other))
    assert code == 1
    assert err == [
        f"{path}: document 2 (FaissIndex alerts): spec.config.nprobe: not a parameter of indexType HNSW; "
        "valid keys: efConstruction, efSearch, m",
        f"{path}: document 4 (FaissIndex tiny): spec.source: required",
        f"{other}: document 1 (FaissIndex Alerts_V2): metadata.name: 'Alerts_V2' is not a DNS-1123 subdomain "
        "(lower case a-z, 0-9, '-' and '.', at most 253)",
        f"{other}: document 2 (FaissIndex old): apiVersion: must be faiss.dev/v1alpha1 "
        "(the only version the CRD serves)",
    ]
    assert out == "5 FaissIndex checked in 2 files, 1 other object skipped: 4 problems\n"


def test_unknown_fields_are_refused_at_the_top_and_in_the_spec() -> None:
    body = copy.deepcopy(samples.DESIGN_EXAMPLE)
    body["specs"] = {}
    body["spec"]["rollout"]["stepz"] = []
    assert validate.validate_object(body) == [
        ("specs", "unknown field (kubectl's default strict field validation refuses it)"),
        ("spec.rollout.stepz", "unknown field (did you mean steps?)"),
    ]


def test_the_status_is_ignored_as_the_api_server_ignores_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path / "x.yaml", {**samples.DESIGN_EXAMPLE, "status": {"phase": "Exploded", "recall": "high"}})
    assert _run(capsys, "-f", str(path))[0] == 0


# --- every sample through each check ---


@pytest.mark.parametrize("name", sorted(samples.GOOD))
def test_good_samples_have_no_problem(name: str) -> None:
    body = samples.GOOD[name]
    assert validate.schema_problems(body) == []
    assert validate.rule_failures(body) == []
    assert validate.validate_object(body) == []


@pytest.mark.parametrize("name", sorted(samples.BAD))
def test_bad_samples_are_refused_by_the_check_that_refuses_them_and_name_a_spec_field(name: str) -> None:
    bad = samples.BAD[name]
    by_schema = validate.schema_problems(bad.body)
    assert bool(by_schema) == (bad.refused_by == "schema"), by_schema
    if bad.refused_by == "cel":
        failures = validate.rule_failures(bad.body)
        assert failures and all(field.startswith("spec") and len(message) > 20 for field, message in failures)
    problems = validate.validate_object(bad.body)
    assert problems and all(field.startswith("spec") for field, _ in problems), problems


def test_a_cel_rule_and_its_model_mirror_are_said_once_in_the_model_s_words() -> None:
    # The API server would answer with the rule's message; the models name the values too.
    body = _named("steps", samples.DESIGN_EXAMPLE)
    body["spec"] = {**body["spec"], "rollout": {"steps": [{"weight": 50, "pauseSeconds": 1},
                                                          {"weight": 25, "pauseSeconds": 1}]}}
    assert validate.rule_failures(body) == [
        ("spec.rollout", "rollout.steps: weights must be strictly increasing (e.g. 10, 25, 50)")]
    assert validate.validate_object(body) == [
        ("spec.rollout.steps", "weights must be strictly increasing (e.g. 10, 25, 50); got [50, 25]")]


def test_a_rule_on_a_value_of_the_wrong_type_is_reported_not_raised() -> None:
    body = _named("odd", samples.DESIGN_EXAMPLE)
    body["spec"] = {**body["spec"], "rollout": {"steps": "twenty-five"}}
    assert validate.rule_failures(body)[0][0] == "spec.rollout"
    problems = validate.validate_object(body)  # the schema refuses the type; the rule is not run
    assert problems[0] == ("spec.rollout.steps", "'twenty-five' is not of type 'array'")


def test_a_long_value_is_not_echoed_whole() -> None:
    problems = validate.validate_object(samples.BAD["too many steps"].body)
    assert problems == [("spec.rollout.steps", "has 22 items; at most 20 allowed")]


# --- inputs a pipeline gets wrong ---


def test_broken_yaml_names_the_document_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "broken.yaml"
    text = yaml.safe_dump(samples.DESIGN_EXAMPLE) + "---\nspec: [unclosed\n"
    path.write_text(text)
    end = text.count("\n") + 1  # the parser finds the list unclosed at the end of the file
    code, out, err = _run(capsys, "-f", str(path))
    assert code == 1
    assert err == [
        f"{path}: document 2: not valid YAML at line {end}, column 1: expected ',' or ']', but got '<stream end>'"
    ]
    assert out == "1 FaissIndex checked in 1 file: 1 problem\n"


def test_a_document_that_is_not_an_object(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    code, _, err = _run(capsys, "-f", str(path))
    assert (code, err) == (1, [f"{path}: document 1: not a Kubernetes object (a YAML list)"])


def test_a_missing_file_is_a_problem_and_the_others_are_still_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _write(tmp_path / "good.yaml", samples.DESIGN_EXAMPLE)
    code, out, err = _run(capsys, "-f", str(tmp_path / "missing.yaml"), "-f", str(good))
    assert (code, err) == (1, [f"{tmp_path / 'missing.yaml'}: cannot read: No such file or directory"])
    assert out == "1 FaissIndex checked in 2 files: 1 problem\n"


def test_no_faissindex_at_all_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path / "cm.yaml", CONFIG_MAP)
    assert _run(capsys, "-f", str(path)) == (
        1,
        "0 FaissIndex checked in 1 file, 1 other object skipped: no FaissIndex found\n",
        [],
    )


def test_a_directory_and_standard_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path / "a.yaml", samples.DESIGN_EXAMPLE)
    (tmp_path / "b.json").write_text(yaml.safe_dump(_named("b", samples.DESIGN_EXAMPLE)))  # JSON is YAML
    (tmp_path / "notes.txt").write_text("not a manifest")
    monkeypatch.setattr(sys, "stdin", io.StringIO(yaml.safe_dump(samples.BAD["zero replicas"].body)))
    code, out, err = _run(capsys, "-f", str(tmp_path), "-f", "-")
    assert code == 1
    assert err == ["stdin: document 1 (FaissIndex alerts): spec.serving.replicas: 0 is less than the minimum of 1"]
    assert out == "3 FaissIndex checked in 3 files: 1 problem\n"


def test_no_file_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["validate"]) == 2
    assert capsys.readouterr().err == (
        "faiss-operator validate: the following arguments are required: -f/--filename "
        "(see faiss-operator validate --help)\n"
    )


def test_the_installed_command(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.yaml", samples.BAD["dimension 0"].body)
    run = subprocess.run(
        [str(BIN / "faiss-operator"), "validate", "-f", str(path)], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 1
    assert run.stderr == f"{path}: document 1 (FaissIndex alerts): spec.dimension: 0 is less than the minimum of 1\n"


def test_a_rule_under_a_list_or_map_is_evaluated_for_each_item_present() -> None:
    # No CEL rule of today's CRD sits under a list or a map; the walk that finds where a rule
    # applies must still reach each item and value, and skip what is absent.
    body = {"spec": {"rollout": {"steps": [{"weight": 10}, {"weight": 20}]}, "labels": {"a": "x", "b": "y"}}}
    walk = validate._values_at
    assert list(walk(body, ("spec", "rollout", "steps", "[]", "weight"), [])) == [
        (["spec", "rollout", "steps", 0, "weight"], 10),
        (["spec", "rollout", "steps", 1, "weight"], 20),
    ]
    assert list(walk(body, ("spec", "labels", "{}"), [])) == [
        (["spec", "labels", "a"], "x"),
        (["spec", "labels", "b"], "y"),
    ]
    assert list(walk(body, ("spec", "build", "image"), [])) == []
