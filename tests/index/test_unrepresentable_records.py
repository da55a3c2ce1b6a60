"""Ids and metadata a later layer could not represent are refused where they enter.

FAISS and .npy ids are int64; the serving pods encode answers with orjson (integers within 64
bits, finite floats, string keys, valid UTF-8, bounded nesting). A value beyond these used to be
accepted here and answered 500 by `serve`; now `add_embeddings` refuses it naming the id or the
field, adds nothing, and loading an artifact that holds one fails like a corrupt artifact.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from faiss_operator.index import ArtifactError, FAISSIndex, RecordError, records

from .conftest import DIMENSION

NESTED_TOO_DEEP: Any = "leaf"
for _ in range(records.MAX_METADATA_DEPTH + 1):
    NESTED_TOO_DEEP = [NESTED_TOO_DEEP]


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        ([2**64 + 5, 1, 2], r"ids\[0\]: id 18446744073709551621 is outside the int64 range"),
        ([0, -(2**63) - 1, 2], r"ids\[1\]: id -9223372036854775809 is outside the int64 range"),
        ([0, 1, 2**63], r"ids\[2\]: id 9223372036854775808 is outside the int64 range"),
        (["ok", "bad\ud800", "x"], r"ids\[1\]: id 'bad\\ud800' is not valid Unicode text"),
    ],
)
def test_ids_beyond_int64_or_not_text_are_refused_by_position(small: np.ndarray, ids: list[Any], message: str) -> None:
    index = FAISSIndex(DIMENSION, "Flat", env={})
    with pytest.raises(RecordError, match=message):
        index.add_embeddings(small[:3], ids=ids)
    assert index.ntotal == 0 and len(index.id_map) == 0


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"account": 18446744073709551618}, r"metadata for id 0: account: the integer 18446744073709551618 does not fit 64 bits"),
        ({"balance": -(2**63) - 1}, r"metadata for id 0: balance: the integer -9223372036854775809 does not fit"),
        ({"score": float("nan")}, r"metadata for id 0: score: nan is not a finite number"),
        ({"score": float("inf")}, r"metadata for id 0: score: inf is not a finite number"),
        ({"tags": ["a", float("-inf")]}, r"metadata for id 0: tags\[1\]: -inf is not a finite number"),
        ({"nested": {"n": 2**70}}, r"metadata for id 0: nested.n: the integer"),
        ({1: "int key"}, r"metadata for id 0: the record has the key 1 of type int; keys must be strings"),
        ({"text": "\udc80"}, r"metadata for id 0: text '\\udc80' is not valid Unicode"),
        ({"deep": NESTED_TOO_DEEP}, r"metadata for id 0: deep(\[0\])+ is nested more than 64 levels deep"),
        ({"value": np.float32(1.0)}, r"metadata for id 0: value: float32 \S*1.0\S* is not a JSON value"),
    ],
)
def test_metadata_the_server_could_not_encode_is_refused_naming_the_field(
    small: np.ndarray, record: dict[Any, Any], message: str
) -> None:
    index = FAISSIndex(DIMENSION, "Flat", env={})
    with pytest.raises(RecordError, match=message):
        index.add_embeddings(small[:3], metadata=[record, None, None])
    assert index.ntotal == 0


def test_the_edges_of_the_ranges_are_kept_exactly(small: np.ndarray, tmp_path: Path) -> None:
    index = FAISSIndex(DIMENSION, "Flat", env={})
    edges = [-(2**63), 2**63 - 1, 0]
    metadata = [{"u64": 2**64 - 1, "i64": -(2**63), "x": 1.5e308, "s": "é\u2028"}, None, {"empty": {}}]
    index.add_embeddings(small[:3], ids=edges, metadata=metadata)
    index.save_index(tmp_path / "a")
    loaded = FAISSIndex.load(tmp_path / "a")
    hit = loaded.search(small[0], k=1)[0]
    assert (hit.ids, hit.metadata) == ([-(2**63)], [metadata[0]])
    assert loaded.id_map.ids() == edges


def _tamper(artifact_dir: Path, name: str, text: str) -> None:
    """Rewrite one file and re-checksum it: an artifact written by a build that let the value in."""
    from faiss_operator.index import artifact

    (artifact_dir / name).write_text(text)
    manifest = artifact.read_manifest(artifact_dir)
    fields = {k: v for k, v in manifest.items() if k not in ("files", "format_version")}
    artifact.write_manifest(artifact_dir, **fields)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("ids.json", json.dumps([0, 2**64 + 5, 2]), r"ids.json\[1\]: id 18446744073709551621 is outside the int64 range"),
        ("metadata.jsonl", 'null\n{"account": 18446744073709551618}\nnull\n',
         r"metadata.jsonl line 2: account: the integer 18446744073709551618 does not fit 64 bits"),
        ("metadata.jsonl", 'null\nnull\n{"score": NaN}\n', r"metadata.jsonl line 3: score: nan is not a finite number"),
    ],
)
def test_an_artifact_holding_such_a_value_does_not_load(
    small: np.ndarray, tmp_path: Path, name: str, text: str, message: str
) -> None:
    index = FAISSIndex(DIMENSION, "Flat", env={})
    index.add_embeddings(small[:3])
    index.save_index(tmp_path / "a")
    _tamper(tmp_path / "a", name, text)
    with pytest.raises(ArtifactError, match=message):
        FAISSIndex.load(tmp_path / "a")
