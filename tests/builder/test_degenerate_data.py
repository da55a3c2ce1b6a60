"""The build counts degenerate data in its report and termination message, passes with what the
rule handles (duplicates, constant dimensions) and refuses what the metric cannot rank
(near-zero norms under cosine) with its own exit code. Issue 19, item 11."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from faiss_operator import cli
from faiss_operator.builder import exit_codes
from tests.builder.conftest import COUNT, build_args


def test_duplicates_and_constant_dimensions_are_built_and_counted(
    tmp_path: Path, vectors: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    vectors[:, 0] = 2.0
    vectors[100:110] = vectors[5]
    np.save(tmp_path / "v.npy", vectors)
    out = tmp_path / "out"
    assert cli.main(build_args(tmp_path / "v.npy", out)) == 0
    expected = {"near_zero_norm_vectors": 0, "duplicate_vectors": 10, "constant_dimensions": 1}
    assert json.loads((out / "report.json").read_text())["data_quality"] == expected
    assert json.loads((tmp_path / "termination-log").read_text())["data_quality"] == expected
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("Degenerate data")] == [
        f"Degenerate data: 10 of {COUNT} vectors repeat an earlier vector exactly",
        "Degenerate data: 1 dimensions hold the same value in every vector",
    ]


def test_near_zero_norms_under_cosine_fail_the_build_with_their_own_exit_code(
    tmp_path: Path, vectors: np.ndarray
) -> None:
    vectors[17] = 1e-9
    vectors[20] = 0.0
    np.save(tmp_path / "v.npy", vectors)
    out = tmp_path / "out"
    code = cli.main(build_args(tmp_path / "v.npy", out, "--metric", "InnerProduct", "--normalize"))
    assert code == exit_codes.ExitCode.DEGENERATE_VECTORS == 21
    report = json.loads((tmp_path / "termination-log").read_text())
    assert report["error"] == (
        f"{tmp_path / 'v.npy'}: 2 of {COUNT} vectors have an L2 norm below 1e-06 (the first is row 17): no direction, "
        "so cosine similarity (normalize) cannot rank them; remove them or build without normalize"
    )
    assert not out.exists()


def test_a_float16_overflow_is_named_as_such(tmp_path: Path, vectors: np.ndarray) -> None:
    halves = vectors.astype(np.float16)
    with np.errstate(over="ignore"):
        halves[3] = np.float16(70000.0)
    np.save(tmp_path / "v.npy", halves)
    assert cli.main(build_args(tmp_path / "v.npy", tmp_path / "out")) == exit_codes.ExitCode.NON_FINITE_VALUES
    assert "hold NaN or Inf (float16 overflow? float16 holds at most ±65504); the first is row 3" in json.loads(
        (tmp_path / "termination-log").read_text())["error"]
