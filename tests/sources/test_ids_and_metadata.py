from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from faiss_operator.sources import errors, ids, metadata


def test_int64_npy_and_text_ids(tmp_path: Path) -> None:
    np.save(tmp_path / "ids.npy", np.array([5, 3, 9], dtype=np.int32))
    read = ids.read_ids(tmp_path / "ids.npy")
    assert isinstance(read, np.ndarray) and read.dtype == np.int64 and read.tolist() == [5, 3, 9]
    (tmp_path / "ids.txt").write_text("doc-a\ndoc b\r\ndoc-c\n")
    assert ids.read_ids(tmp_path / "ids.txt") == ["doc-a", "doc b", "doc-c"]


def test_bad_id_files(tmp_path: Path) -> None:
    np.save(tmp_path / "f.npy", np.array([1.5, 2.0]))
    with pytest.raises(errors.UnsupportedSourceError, match="integers"):
        ids.read_ids(tmp_path / "f.npy")
    (tmp_path / "blank.txt").write_text("a\n\nb\n")
    with pytest.raises(errors.MalformedSourceError, match="line 2 is empty"):
        ids.read_ids(tmp_path / "blank.txt")
    (tmp_path / "ids.json").write_text("[]")
    with pytest.raises(errors.UnsupportedSourceError):
        ids.read_ids(tmp_path / "ids.json")
    with pytest.raises(errors.SourceNotFoundError):
        ids.read_ids(tmp_path / "absent.txt")


def test_id_count_must_match_vectors() -> None:
    with pytest.raises(errors.IdCountMismatchError, match="2 ids for 3 vectors"):
        ids.check_ids(["a", "b"], 3, name="ids.txt")


def test_duplicate_ids_name_the_first_repeat() -> None:
    with pytest.raises(errors.DuplicateIdsError, match="2 ids appear more than once; the first is 7"):
        ids.check_ids(np.array([9, 7, 1, 7, 9, 9], dtype=np.int64), 6, name="ids.npy")
    with pytest.raises(errors.DuplicateIdsError, match="the first is 'b'"):
        ids.check_ids(["a", "b", "c", "b"], 4, name="ids.txt")
    ids.check_ids(np.array([3, 1, 2], dtype=np.int64), 3, name="ids.npy")


def _write_jsonl(path: Path, records: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_metadata_keyed_by_id_is_aligned_with_the_ids(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "m.jsonl", [{"id": "b", "t": 2}, {"id": "a", "t": 1}])
    records = metadata.read_metadata(path)
    metadata.check_metadata(records, ["a", "b"], name="m.jsonl")
    assert metadata.aligned(records, ["a", "b"]) == [{"id": "a", "t": 1}, {"id": "b", "t": 2}]
    records = metadata.read_metadata(_write_jsonl(tmp_path / "n.jsonl", [{"key": 1}, {"key": 0}]), id_key="key")
    metadata.check_metadata(records, np.arange(2, dtype=np.int64), name="n.jsonl")


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ([{"id": "a"}], "1 metadata records for 2 ids; ids without a record \\(first 'b'\\)"),
        ([{"id": "a"}, {"id": "b"}, {"id": "z"}], "records name ids with no vector \\(first 'z'\\)"),
        ([{"id": "a"}, {"id": "a"}], "id 'a' appears twice"),
        ([{"name": "a"}], "line 1 has no 'id' field"),
        ([{"id": [1]}], "must be an integer or a string"),
    ],
)
def test_metadata_mismatches(tmp_path: Path, records: list[object], message: str) -> None:
    path = _write_jsonl(tmp_path / "m.jsonl", records)
    with pytest.raises(errors.MetadataMismatchError, match=message):
        metadata.check_metadata(metadata.read_metadata(path), ["a", "b"], name="m.jsonl")


def test_malformed_metadata_lines(tmp_path: Path) -> None:
    (tmp_path / "m.jsonl").write_text('{"id": "a"}\n{"id": \n')
    with pytest.raises(errors.MalformedSourceError, match="line 2 is not JSON"):
        metadata.read_metadata(tmp_path / "m.jsonl")
    (tmp_path / "l.jsonl").write_text("[1, 2]\n")
    with pytest.raises(errors.MalformedSourceError, match="line 1 is not a JSON object"):
        metadata.read_metadata(tmp_path / "l.jsonl")


# -- text files as people save them (BOM, CRLF, trailing blank lines) --------------------------

BOM = b"\xef\xbb\xbf"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (BOM + b"doc-1\ndoc-2\ndoc-3\n", ["doc-1", "doc-2", "doc-3"]),
        (BOM + b"doc-1\r\ndoc-2\r\ndoc-3\r\n", ["doc-1", "doc-2", "doc-3"]),
        (b"doc-1\r\ndoc-2\r\ndoc-3", ["doc-1", "doc-2", "doc-3"]),
        (b"doc-1\rdoc-2\rdoc-3\r", ["doc-1", "doc-2", "doc-3"]),
        (b"doc-1\ndoc-2\ndoc-3\n\n", ["doc-1", "doc-2", "doc-3"]),
        (b"doc-1\r\ndoc-2\r\ndoc-3\r\n\r\n  \r\n", ["doc-1", "doc-2", "doc-3"]),
        (b"doc 1\n\xc3\xa9t\xc3\xa9\n\xef\xbb\xbfinner\n", ["doc 1", "\u00e9t\u00e9", "\ufeffinner"]),
    ],
    ids=["bom", "bom-crlf", "crlf-no-final-newline", "old-mac-cr", "trailing-blank", "crlf-trailing-blanks",
         "only-a-leading-bom-is-dropped"],
)
def test_text_ids_as_people_save_them(tmp_path: Path, content: bytes, expected: list[str]) -> None:
    (tmp_path / "ids.txt").write_bytes(content)
    assert ids.read_ids(tmp_path / "ids.txt") == expected


def test_a_blank_line_before_the_last_id_is_still_an_error(tmp_path: Path) -> None:
    (tmp_path / "ids.txt").write_bytes(BOM + b"a\r\n\r\nb\r\n\r\n")
    with pytest.raises(errors.MalformedSourceError, match="line 2 is empty; every line must hold one id"):
        ids.read_ids(tmp_path / "ids.txt")


@pytest.mark.parametrize("ending", [b"\n", b"\r\n"])
def test_metadata_with_bom_crlf_and_trailing_blank_lines(tmp_path: Path, ending: bytes) -> None:
    lines = [b'{"id": "doc-1", "t": 1}', b'{"id": "doc-2", "t": 2}']
    (tmp_path / "m.jsonl").write_bytes(BOM + ending.join(lines) + ending + ending)
    (tmp_path / "ids.txt").write_bytes(BOM + b"doc-1" + ending + b"doc-2" + ending)
    keys = ids.read_ids(tmp_path / "ids.txt")
    records = metadata.read_metadata(tmp_path / "m.jsonl")
    metadata.check_metadata(records, keys, name="m.jsonl")
    assert metadata.aligned(records, keys) == [{"id": "doc-1", "t": 1}, {"id": "doc-2", "t": 2}]


# -- values the serving pods could not return exactly -----------------------------------------


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"id": 2, "account": 18446744073709551618}',
         r"m.jsonl: line 2: account: the integer 18446744073709551618 does not fit 64 bits"),
        ('{"id": 2, "score": NaN}', r"m.jsonl: line 2: score: nan is not a finite number"),
        ('{"id": 2, "score": -Infinity}', r"m.jsonl: line 2: score: -inf is not a finite number"),
        ('{"id": 2, "score": 1e400}', r"m.jsonl: line 2: score: inf is not a finite number"),
        ('{"id": 2, "tags": ["a", "\\udc80"]}', r"m.jsonl: line 2: tags\[1\] '\\udc80' is not valid Unicode text"),
    ],
)
def test_metadata_values_beyond_json_are_refused_naming_the_line(tmp_path: Path, line: str, message: str) -> None:
    (tmp_path / "m.jsonl").write_text('{"id": 1}\n' + line + "\n")
    with pytest.raises(errors.MalformedSourceError, match=message):
        metadata.read_metadata(tmp_path / "m.jsonl", name="m.jsonl")
