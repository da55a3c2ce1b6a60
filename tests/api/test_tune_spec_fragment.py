"""`faiss-operator tune --output-format spec`: the best result as lines to paste under `spec:`.

Field report (issue 19, item 5): tune wrote its best config in snake_case with nulls, which a
FaissIndex refuses. The fragment is camelCase, has only keys with a value, and is a valid spec.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from faiss_operator import cli
from faiss_operator.api import validate

from tests.api import samples


def _data(tmp_path: Path) -> Path:
    np.save(tmp_path / "data.npy", np.random.default_rng(0).normal(size=(600, 16)).astype(np.float32))
    return tmp_path / "data.npy"


def test_the_best_result_is_a_spec_fragment_that_validates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["tune", "--data", str(_data(tmp_path)), "--types", "IVF", "--num-queries", "20",
            "--target-recall", "0.5", "--output-format", "spec"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    comment, _, body = out.partition("\n")
    assert re.fullmatch(r"# faiss-operator tune: recall@10 [01]\.\d{3}, p99 \d+\.\d{3} ms, \d+ B/vector", comment)
    fragment = yaml.safe_load(body)
    assert list(fragment) == ["indexType", "config"]
    assert fragment["indexType"] == "IVF"
    # Only the keys with a value: the sweep left nlist and trainSize to the build (from the vector
    # count), so the fragment does too, rather than writing `nlist: null`.
    assert set(fragment["config"]) == {"nprobe"}
    assert all(isinstance(value, int) for value in fragment["config"].values())
    body = copy.deepcopy(samples.DESIGN_EXAMPLE)
    body["spec"] = {**body["spec"], "dimension": 16, **fragment}
    assert validate.validate_object(body) == []


def test_no_result_meeting_the_target_is_said_not_printed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["tune", "--data", str(_data(tmp_path)), "--types", "IVF", "--num-queries", "20",
            "--target-recall", "1.0", "--max-p99-ms", "0.000001", "--output-format", "spec"]
    assert cli.main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ("faiss-operator tune: no result meets the target, so there is no spec to print; "
                            "lower --target-recall or see the table\n")


def test_json_and_another_format_disagree(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["tune", "--json", "--output-format", "spec"]) == 2
    assert capsys.readouterr().err == "faiss-operator tune: --json and --output-format spec disagree\n"
