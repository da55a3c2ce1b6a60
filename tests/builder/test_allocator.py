"""The build's allocator setting: an IVF index added in chunks holds its inverted lists, not the
freed copies of them that glibc's dynamic mmap threshold would keep resident."""

from __future__ import annotations

import ctypes.util
import json
import subprocess
import sys

import pytest

from faiss_operator.builder import allocator

# A subprocess, so the allocator starts fresh: 200,000 x 128 into IVF256 in 65,536-row chunks,
# each list ~780 vectors (~400 KiB of codes and ids), past the 128 KiB threshold.
SCRIPT = """
import json, sys
import faiss, numpy as np
from faiss_operator.builder import allocator, anon_memory
fixed = allocator.fix_mmap_threshold() if sys.argv[1] == "fixed" else None
faiss.omp_set_num_threads(1)
d, nlist, n = 128, 256, 200_000
rng = np.random.default_rng(0)
index = faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, nlist)
index.cp.niter = 2
index.train(rng.standard_normal((nlist * 39, d), dtype=np.float32))
before = anon_memory.rss_anon_bytes()
for start in range(0, n, 65_536):
    index.add(rng.standard_normal((min(65_536, n - start), d), dtype=np.float32))
grown = anon_memory.rss_anon_bytes() - before
print(json.dumps({"fixed": fixed, "grown": grown, "lists": n * (4 * d + 8)}))
"""


def grown(mode: str) -> dict[str, int]:
    done = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True, timeout=120)
    answer: dict[str, int] = json.loads(done.stdout)
    return answer


def test_a_chunked_ivf_add_holds_its_lists_and_not_their_freed_copies() -> None:
    default, fixed = grown("default"), grown("fixed")
    assert fixed["fixed"] is True
    # The lists and a few MiB of FAISS's own; without the setting glibc keeps ~30% more here.
    assert fixed["grown"] <= 1.08 * fixed["lists"], fixed
    assert default["grown"] > 1.15 * default["lists"] > fixed["grown"], (default, fixed)


def test_a_c_library_without_mallopt_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: "/nonexistent/libc-without-mallopt.so")
    assert allocator.fix_mmap_threshold() is False
