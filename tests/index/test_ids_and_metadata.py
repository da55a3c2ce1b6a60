"""External ids and per-id metadata come back with every hit and survive later adds."""

from __future__ import annotations

import numpy as np
import pytest

from faiss_operator.index import FAISSIndex, RecordError

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
