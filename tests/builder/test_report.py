from __future__ import annotations

import json

from faiss_operator.builder import report


def test_a_small_report_is_unchanged() -> None:
    document = {"status": "Succeeded", "recall": 0.98, "config": {"m": 32}}
    assert json.loads(report.compact(document)) == document


def test_optional_fields_go_first_then_the_error_is_shortened() -> None:
    document = {
        "status": "Failed", "exit_code": 17, "config": {f"k{i}": "x" * 50 for i in range(100)},
        "source": "s" * 3000, "error": "e" * 9000, "artifact": "/artifacts/rev",
    }
    text = report.compact(document)
    assert len(text.encode()) <= 4096
    compacted = json.loads(text)
    assert compacted["status"] == "Failed" and compacted["exit_code"] == 17
    assert "config" not in compacted and compacted["error"].endswith("...")


def test_multibyte_error_text_still_fits() -> None:
    text = report.compact({"status": "Failed", "error": "é" * 5000})
    assert len(text.encode()) <= 4096
    json.loads(text)


def test_unwritable_termination_log_does_not_raise(tmp_path: object) -> None:
    report.write_termination_log(__import__("pathlib").Path("/nonexistent-dir/termination-log"), {"status": "x"})
