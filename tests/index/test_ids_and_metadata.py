"""External ids and per-id metadata come back with every hit and survive later adds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

from faiss_operator.index import FAISSIndex, RecordError, artifact, record_files

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
    with mock.patch.object(record_files, "WRITE_CHUNK", 64):
        index.save_index(tmp_path / "default")
    assert (tmp_path / "default" / "ids.json").read_text() == json.dumps(list(range(len(small))))
    assert (tmp_path / "default" / "metadata.jsonl").read_text() == "null\n" * len(small)
    loaded = FAISSIndex.load(tmp_path / "default")
    assert loaded.id_map.view() == range(len(small))
    assert loaded.search(small[17], k=1)[0].ids == [17]

    named = FAISSIndex(DIMENSION, "Flat", env={})
    named.add_embeddings(small[:130], ids=[f"d{i}" for i in range(130)], metadata={"d129": {"n": 1}})
    with mock.patch.object(record_files, "WRITE_CHUNK", 64):
        named.save_index(tmp_path / "named")
    assert (tmp_path / "named" / "ids.json").read_text() == json.dumps([f"d{i}" for i in range(130)])
    assert (tmp_path / "named" / "metadata.jsonl").read_text().splitlines()[-2:] == ["null", '{"n": 1}']
    reloaded = FAISSIndex.load(tmp_path / "named")
    assert reloaded.id_map.ids() == [f"d{i}" for i in range(130)]
    assert reloaded.search(small[129], k=1)[0].metadata == [{"n": 1}]


def test_default_ids_written_another_way_still_load_as_a_range_and_a_wrong_count_is_refused(
    small: np.ndarray, tmp_path: Path
) -> None:
    """The slice-by-slice comparison only recognises write_ids's own bytes; other spellings of
    0..n-1 are parsed, and still held as a range; a file one id short is not taken for a range."""
    index = FAISSIndex(DIMENSION, "Flat", env={})
    index.add_embeddings(small[:20])
    index.save_index(tmp_path / "a")
    (tmp_path / "a" / "ids.json").write_text(json.dumps(list(range(20)), separators=(",", ":")))
    assert record_files.read_ids(tmp_path / "a", 20) == range(20)
    (tmp_path / "a" / "ids.json").write_text(json.dumps(list(range(19))))
    assert record_files.read_ids(tmp_path / "a", 20) == range(19)  # the caller compares the counts
    manifest = json.loads((tmp_path / "a" / artifact.MANIFEST_NAME).read_text())
    with pytest.raises(artifact.ArtifactError, match=r"counts disagree: manifest 20, index.faiss 20, ids.json 19"):
        FAISSIndex.load_with_manifest(tmp_path / "a", verified_manifest=manifest)
    (tmp_path / "a" / "ids.json").write_text(json.dumps(list(range(20))) + "junk")  # the default ids' bytes, then more
    with pytest.raises(artifact.ArtifactError, match="ids.json is not a list of ids: Extra data"):
        record_files.read_ids(tmp_path / "a", 20)
    (tmp_path / "a" / "ids.json").write_text('{"0": 0}')
    with pytest.raises(artifact.ArtifactError, match="ids.json is not a list of ids: not a JSON list"):
        record_files.read_ids(tmp_path / "a", 20)


# In a fresh interpreter: the heap the test session has already grown could hide what a read holds.
_READ_IDS_MEMORY = """
import json, pathlib, sys
from faiss_operator.builder import anon_memory
from faiss_operator.index import record_files
root, count = pathlib.Path(sys.argv[1]), int(sys.argv[2])
record_files.write_ids(root / record_files.IDS_FILE, range(count))
with anon_memory.PeakAnonMemory(interval=0.002) as peak:
    before = anon_memory.rss_anon_bytes()
    ids = record_files.read_ids(root, count)
print(json.dumps({"before": before, "peak": peak.bytes, "range": ids == range(count)}))
"""


def test_loading_default_ids_never_parses_them_into_a_list(tmp_path: Path) -> None:
    """json.loads of 2M ids is a 16 MB string and ~72 MB of list and ints, in every serving
    process as it loads; comparing the file with the default ids' bytes holds one slice."""
    count = 2_000_000
    finished = subprocess.run(
        [sys.executable, "-c", _READ_IDS_MEMORY, str(tmp_path), str(count)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    measured = json.loads(finished.stdout.strip().splitlines()[-1])
    assert measured["range"] is True
    assert measured["peak"] - measured["before"] < 32 << 20, measured  # json.loads: 96 MiB
