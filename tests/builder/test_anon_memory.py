"""The build's peak anonymous memory: read from /proc, and a peak held only briefly is still seen."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from faiss_operator.builder import anon_memory

MIB = 1 << 20


def test_rss_anon_is_read_from_the_status_file(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nVmRSS:\t  900 kB\nRssAnon:\t  512 kB\nRssFile:\t  388 kB\n")
    assert anon_memory.rss_anon_bytes(status) == 512 * 1024
    assert anon_memory.rss_anon_bytes(tmp_path / "missing") is None
    status.write_text("Name:\tpython\n")
    assert anon_memory.rss_anon_bytes(status) is None


def test_an_allocation_freed_before_the_end_is_in_the_peak() -> None:
    with anon_memory.PeakAnonMemory() as peak:
        before = anon_memory.rss_anon_bytes()
        assert before is not None
        held = np.ones(128 * MIB // 8)  # touched, so resident: 128 MiB of anonymous memory
        peak.sample()
        del held
    assert peak.bytes is not None and peak.bytes >= before + 120 * MIB


def test_a_mapped_file_does_not_count(tmp_path: Path) -> None:
    path = tmp_path / "v.npy"
    np.save(path, np.ones((64 * MIB // 4,), dtype=np.float32))
    before = anon_memory.rss_anon_bytes()
    mapped = np.load(path, mmap_mode="r")
    assert float(mapped.sum(dtype=np.float64)) == len(mapped)  # every page read
    after = anon_memory.rss_anon_bytes()
    assert before is not None and after is not None and after - before < 16 * MIB
