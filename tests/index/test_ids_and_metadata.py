"""External ids and per-id metadata come back with every hit and survive later adds."""

from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

from faiss_operator.index import FAISSIndex, RecordError, faiss_index

from .conftest import DIMENSION


def test_string_ids_and_aligned_metadata_come_back_with_hits(small: np.ndarray) -> None:
    index = FAISSIndex(DIMENSION, "Flat", env={})
    ids = [f"doc-{i}" for i in range(len(small))]
    index.add_embeddings(small, ids=ids, metadata=[{"title": f"t{i}"} for i in range(len(small))])

    result = index.search(small[42], k=3)[0]

    assert result.ids[0] == "doc-42"
    assert result.metadata[0] == {"title": "t42"}
    assert len(result.ids) == len(result.distances) == len(result.metadata) == 3
    assert result.hits[0].id == "doc-42"


def test_metadata_by_id_and_ids_without_metadata(small: np.ndarray) -> None:
    index = FAISSIndex(DIMENSION, "Flat", env={})
    index.add_embeddings(small[:10], ids=list(range(100, 110)), metadata={103: {"a": 1}})

    assert index.metadata == {103: {"a": 1}}
    assert index.search(small[3], k=1)[0].metadata == [{"a": 1}]
    assert index.search(small[4], k=1)[0].metadata == [None]


def test_default_ids_continue_after_earlier_adds(small: np.ndarray) -> None:
    index = FAISSIndex(DIMENSION, "Flat", env={})
    index.add_embeddings(small[:5])
    added = index.add_embeddings(small[5:8])
    assert added == [5, 6, 7]
    assert dict(index.id_map) == {i: i for i in range(8)}
    assert index.id_map.position_of(6) == 6


def test_external_ids_maps_positions_and_missing_hits(small: np.ndarray) -> None:
    index = FAISSIndex(DIMENSION, "Flat", env={})
    index.add_embeddings(small[:3], ids=["a", "b", "c"])
    _, positions = index.search_arrays(small[0], k=5)
    mapped = index.external_ids(positions)
    assert mapped[0][0] == "a"
    assert mapped[0][3:] == [None, None]


@pytest.mark.parametrize(
    ("ids", "metadata", "message"),
    [
        (["x", "x", "y"], None, "duplicate id 'x'"),
        ([1, 2], None, "got 2 ids for 3 embeddings"),
        ([1.5, 2, 3], None, "ids must be str or int"),
        ([True, 2, 3], None, "got bool"),
        ("abc", None, "expected a sequence"),
        (None, [{}, {}], "got 2 entries for 3 embeddings"),
        (None, {7: {}}, "id 7 is not among the ids being added"),
        (None, [{"a": object()}, None, None], "object .* is not a JSON value"),
        (None, ["text", None, None], "expected a dict"),
        (None, "meta", "expected a list aligned with the ids"),
    ],
)
def test_bad_ids_or_metadata_are_refused_and_nothing_is_added(
    small: np.ndarray, ids: object, metadata: object, message: str
) -> None:
    index = FAISSIndex(DIMENSION, "Flat", env={})
    with pytest.raises(RecordError, match=message):
        index.add_embeddings(small[:3], ids=ids, metadata=metadata)
    assert index.ntotal == 0
    assert len(index.id_map) == 0


def test_an_id_already_in_the_index_is_refused(small: np.ndarray) -> None:
    index = FAISSIndex(DIMENSION, "Flat", env={})
    index.add_embeddings(small[:2], ids=["a", "b"])
    with pytest.raises(RecordError, match="duplicate id 'b'"):
        index.add_embeddings(small[2:4], ids=["c", "b"])
    assert index.ntotal == 2


def test_the_reverse_lookup_built_late_agrees_with_every_extend_and_refuses_present_ids() -> None:
    from faiss_operator.index.records import IdMap, RecordError

    id_map = IdMap()
    id_map.check_new(["a", "b"])
    id_map.extend(["a", "b"])  # a bulk load into an empty map: no reverse lookup yet
    id_map.extend(["c"])
    assert [id_map.position_of(i) for i in ("a", "b", "c", "z")] == [0, 1, 2, None]
    id_map.extend(["d"])  # after the lookup exists, extend keeps it current
    assert id_map.position_of("d") == 3 and id_map.external(3) == "d"
    with pytest.raises(RecordError, match="duplicate id 'b'"):
        id_map.check_new(["e", "b"])
    fresh = IdMap()
    fresh.extend([5, 6])
    with pytest.raises(RecordError, match="duplicate id 6"):
        fresh.check_new([6])  # the lookup is built from what a bulk load left


def test_default_ids_are_held_as_a_range_until_another_id_arrives(small: np.ndarray) -> None:
    """Ids that are their own positions cost no object per id (a list of 10M int ids is ~350 MiB,
    in the build and in every serving process); the first id that is not its position turns the
    map into a list that maps the same."""
    index = FAISSIndex(DIMENSION, "Flat", env={})
    index.add_embeddings(small[:5])
    index.add_embeddings(small[5:8], ids=[5, 6, 7])  # given, but the positions: still a range
    assert index.id_map.view() == range(8)
    assert index.id_map.ids() == list(range(8))
    assert [index.id_map.position_of(i) for i in (0, 7, 8, -1, "3", np.int64(3), 3.0, 3.5)] == [
        0, 7, None, None, None, 3, 3, None,  # what a dict of the ids would answer
    ]
    with pytest.raises(RecordError, match="duplicate id 3"):
        index.add_embeddings(small[8:10], ids=[100, 3])
    index.add_embeddings(small[8:10], ids=["doc-8", 9])
    assert not isinstance(index.id_map.view(), range)
    assert index.id_map.ids() == [*range(8), "doc-8", 9]
    assert [index.id_map.position_of(i) for i in ("doc-8", 9, 4, 8, np.int64(3), 3.0)] == [8, 9, 4, None, 3, 3]
    index.add_embeddings(small[10:11], ids=["doc-10"])  # after the reverse lookup exists
    assert index.id_map.position_of("doc-10") == 10
    with pytest.raises(RecordError, match="duplicate id 'doc-8'"):
        index.add_embeddings(small[11:12], ids=["doc-8"])
    assert index.search(small[8], k=1)[0].ids == ["doc-8"]


def test_an_artifact_of_default_ids_writes_the_same_json_and_loads_them_as_a_range(
    small: np.ndarray, tmp_path: Path
) -> None:
    index = FAISSIndex(DIMENSION, "Flat", env={})
    index.add_embeddings(small)  # 300 vectors: ids.json and metadata.jsonl written in slices of 64
    with mock.patch.object(faiss_index, "_WRITE_CHUNK", 64):
        index.save_index(tmp_path / "default")
    assert (tmp_path / "default" / "ids.json").read_text() == json.dumps(list(range(len(small))))
    assert (tmp_path / "default" / "metadata.jsonl").read_text() == "null\n" * len(small)
    loaded = FAISSIndex.load(tmp_path / "default")
    assert loaded.id_map.view() == range(len(small))
    assert loaded.search(small[17], k=1)[0].ids == [17]

    named = FAISSIndex(DIMENSION, "Flat", env={})
    named.add_embeddings(small[:130], ids=[f"d{i}" for i in range(130)], metadata={"d129": {"n": 1}})
    with mock.patch.object(faiss_index, "_WRITE_CHUNK", 64):
        named.save_index(tmp_path / "named")
    assert (tmp_path / "named" / "ids.json").read_text() == json.dumps([f"d{i}" for i in range(130)])
    assert (tmp_path / "named" / "metadata.jsonl").read_text().splitlines()[-2:] == ["null", '{"n": 1}']
    reloaded = FAISSIndex.load(tmp_path / "named")
    assert reloaded.id_map.ids() == [f"d{i}" for i in range(130)]
    assert reloaded.search(small[129], k=1)[0].metadata == [{"n": 1}]
