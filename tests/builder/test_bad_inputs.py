"""Each bad input fails fast with its own exit code, a clear message, and nothing left behind."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from faiss_operator import cli
from faiss_operator.builder import exit_codes
from faiss_operator.index import evaluation
from faiss_operator.sources import errors
from tests.builder.conftest import COUNT, build_args, leftovers


def _nan_rows(inputs: Path) -> list[str]:
    data = np.load(inputs / "v.npy")
    data[17, 3] = np.nan
    data[900, 0] = np.inf
    np.save(inputs / "bad.npy", data)
    return [str(inputs / "bad.npy")]


def _duplicate_ids(inputs: Path) -> list[str]:
    ids = [f"doc-{i}" for i in range(COUNT)]
    ids[10] = "doc-3"
    (inputs / "dup.txt").write_text("\n".join(ids) + "\n")
    return [str(inputs / "v.npy"), "--ids", str(inputs / "dup.txt")]


def _short_ids(inputs: Path) -> list[str]:
    (inputs / "short.txt").write_text("".join(f"doc-{i}\n" for i in range(COUNT - 1)))
    return [str(inputs / "v.npy"), "--ids", str(inputs / "short.txt")]


def _short_metadata(inputs: Path) -> list[str]:
    lines = (inputs / "meta.jsonl").read_text().splitlines()[:-5]
    (inputs / "short.jsonl").write_text("\n".join(lines) + "\n")
    return [str(inputs / "v.npy"), "--ids", str(inputs / "ids.txt"), "--metadata", str(inputs / "short.jsonl")]


def _empty(inputs: Path) -> list[str]:
    np.save(inputs / "empty.npy", np.zeros((0, 32), np.float32))
    return [str(inputs / "empty.npy")]


def _float64(inputs: Path) -> list[str]:
    np.save(inputs / "f64.npy", np.zeros((5, 32), np.float64))
    return [str(inputs / "f64.npy")]


def _truncated_fvecs(inputs: Path) -> list[str]:
    (inputs / "t.fvecs").write_bytes(np.array([32] + [0] * 20, dtype=np.int32).tobytes())
    return [str(inputs / "t.fvecs")]


def _metadata_line(value: str) -> Callable[[Path], list[str]]:
    """Numeric ids (the vector's row) and one metadata line, line 3, holding `value`."""
    def make(inputs: Path) -> list[str]:
        lines = [json.dumps({"id": i}) for i in range(COUNT)]
        lines[2] = '{"id": 2, "account": ' + value + "}"
        (inputs / "odd.jsonl").write_text("\n".join(lines) + "\n")
        return [str(inputs / "v.npy"), "--metadata", str(inputs / "odd.jsonl")]
    return make


CASES: list[tuple[str, Callable[[Path], list[str]], list[str], int, str]] = [
    ("missing file", lambda i: [str(i / "absent.npy")], [], 10, "no such file"),
    ("unsupported scheme", lambda i: ["gs://bucket/v.npy"], [], 13, "unsupported URI scheme"),
    ("float64", _float64, [], 13, "float32 or float16"),
    ("truncated fvecs", _truncated_fvecs, [], 14, "not a whole number of rows"),
    ("empty", _empty, [], 15, "no vectors"),
    ("dimension mismatch", lambda i: [str(i / "v.npy")], ["--dimension", "384"], 16, "dimension 32, expected 384"),
    ("NaN rows", _nan_rows, [], 17, "2 of 3000 vectors hold NaN or Inf; the first is row 17"),
    ("duplicate ids", _duplicate_ids, [], 18, "the first is 'doc-3'"),
    ("id count", _short_ids, [], 19, "2999 ids for 3000 vectors"),
    ("metadata count", _short_metadata, [], 20, "2995 metadata records for 3000 ids"),
    ("config key of another type", lambda i: [str(i / "v.npy")], ["--index-type", "Flat", "--config", '{"nprobe": 4}'], 3, "nprobe"),
    ("config not JSON", lambda i: [str(i / "v.npy")], ["--config", "{m: 4"], 3, "not valid JSON"),
    ("metadata int beyond 64 bits", _metadata_line("18446744073709551618"), [], 14,
     "odd.jsonl: line 3: account: the integer 18446744073709551618 does not fit 64 bits"),
    ("metadata NaN", _metadata_line("NaN"), [], 14, "odd.jsonl: line 3: account: nan is not a finite number"),
    ("metadata Infinity", _metadata_line("Infinity"), [], 14, "odd.jsonl: line 3: account: inf is not a finite number"),
]


@pytest.mark.parametrize(("name", "make", "extra", "code", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_input(
    inputs: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture,
    name: str, make: Callable[[Path], list[str]], extra: list[str], code: int, message: str,
) -> None:
    source, *rest = make(inputs)
    out_parent = tmp_path / "out"
    out_parent.mkdir()
    assert cli.main(build_args(source, out_parent / "rev", *rest, *extra)) == code
    report = json.loads((out_parent / "termination-log").read_text())
    assert report["status"] == "Failed" and report["exit_code"] == code
    assert message in report["error"]
    assert message in caplog.text
    assert [p.name for p in out_parent.iterdir()] == ["termination-log"]
    assert leftovers(out_parent) == []


def test_each_kind_of_source_error_has_its_own_exit_code() -> None:
    kinds = [cls for cls in vars(errors).values() if isinstance(cls, type) and issubclass(cls, errors.SourceError)]
    codes = {exit_codes.exit_code_for(cls("x")) for cls in kinds if cls is not errors.SourceError}
    assert len(codes) == len(kinds) - 1 and exit_codes.ExitCode.UNEXPECTED not in codes


def test_too_few_vectors_to_train_is_a_build_failure(inputs: Path, tmp_path: Path) -> None:
    np.save(inputs / "few.npy", np.load(inputs / "v.npy")[:50])
    out_parent = tmp_path / "out"
    out_parent.mkdir()
    code = cli.main(build_args(inputs / "few.npy", out_parent / "rev", "--index-type", "IVF", "--config", '{"nlist": 64}'))
    assert code in (3, 32)
    assert json.loads((out_parent / "termination-log").read_text())["status"] == "Failed"
    assert leftovers(out_parent) == []


def test_too_few_vectors_for_the_recommended_training_build_with_one_warning(
    inputs: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """The issue's case: IVFPQ with nlist 256 on fewer than 39 x 256 vectors. It builds (exit 0),
    says so once in the log, and FAISS's stderr WARNING lines (one per sub-quantizer) are gone."""
    np.save(inputs / "some.npy", np.load(inputs / "v.npy")[:600])
    out_parent = tmp_path / "out"
    out_parent.mkdir()
    with evaluation.faiss_threads(1):  # OpenMP spins on a busy shared machine
        code = cli.main(build_args(inputs / "some.npy", out_parent / "rev", "--index-type", "IVFPQ", "--config", '{"nlist": 256}'))
    assert code == 0
    warnings = [r.getMessage() for r in caplog.records if "recommended" in r.getMessage()]
    assert warnings == [
        "Training IVF256,PQ32x8 on 600 vectors, fewer than the 9984 recommended (39 per centroid for 256 "
        "centroids); recall may suffer: give at least 9984 vectors (or train_size), or fewer centroids"
    ]
    captured = capfd.readouterr()
    assert "WARNING clustering" not in captured.err + captured.out
    report = json.loads((out_parent / "termination-log").read_text())
    assert report["effective_config"]["m_pq"] == 32 and report["config"]["m_pq"] is None
