"""The training sample: the same seeded rows as training on the whole array, bounded, spilled when large."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from faiss_operator.index import normalization, training_sample


def test_the_rows_are_the_draw_train_index_makes_on_a_whole_array() -> None:
    rows = training_sample.sample_rows(1000, 10, seed=4)
    expected = np.sort(np.random.default_rng(4).choice(1000, size=10, replace=False))
    assert rows.tolist() == expected.tolist()
    assert training_sample.sample_rows(5, 10, seed=4).tolist() == [0, 1, 2, 3, 4]


def test_a_whole_float32_memory_map_is_used_as_is(tmp_path: Path) -> None:
    np.save(tmp_path / "v.npy", np.ones((50, 4), dtype=np.float32))
    mapped = np.load(tmp_path / "v.npy", mmap_mode="r")
    with training_sample.training_sample(mapped, 50, seed=0, normalize=False, spill_dir=tmp_path) as sample:
        assert sample is mapped


def test_in_memory_and_spilled_samples_hold_the_same_normalised_rows(tmp_path: Path) -> None:
    half = (np.random.default_rng(1).standard_normal((300, 8)) * 5).astype(np.float16)
    rows = training_sample.sample_rows(300, 40, seed=2)
    expected = normalization.l2_normalized(half.astype(np.float32)[rows])
    with training_sample.training_sample(half, 40, seed=2, normalize=True, spill_dir=tmp_path, chunk_rows=7) as held:
        assert isinstance(held, np.ndarray) and not isinstance(held, np.memmap)
        assert np.array_equal(held, expected)
    with training_sample.training_sample(
        half, 40, seed=2, normalize=True, spill_dir=tmp_path, in_memory_bytes=0, chunk_rows=7
    ) as spilled:
        assert isinstance(spilled, np.memmap) and np.array_equal(spilled, expected)
        assert [p.name for p in tmp_path.iterdir()][0].startswith(".training-sample-")
    assert list(tmp_path.iterdir()) == []  # the spill file is removed
