"""The C allocator's setting for a build: large blocks come from mmap and go back when freed.

FAISS keeps each inverted list of the IVF types in a std::vector of its own, which grows as the
build adds its chunks: a larger block, a copy, the old block freed. glibc serves a block over
its mmap threshold (128 KiB) with mmap and gives it back to the kernel when freed, but it raises
that threshold to the size of each mmapped block freed (the "dynamic mmap threshold" of
mallopt(3)); from then on lists of a few hundred KiB are carved from the heap, and their freed
old copies stay resident. Measured: 500,000 x 384 into IVF2048 in 65,536-row chunks, 941 MiB of
anonymous memory for 735 MiB of lists (1.28x) by default, 748 MiB (1.02x) with the threshold
fixed; at 1M x 384 IVF4000 the default reached the index + 617 MiB. The add took ~4% longer.
Setting M_MMAP_THRESHOLD at all turns the dynamic adjustment off (mallopt(3), NOTES).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

LOGGER = logging.getLogger(__name__)
M_MMAP_THRESHOLD = -3  # glibc's <malloc.h>
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's default threshold, kept fixed


def fix_mmap_threshold(threshold_bytes: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Fix glibc's mmap threshold for this process at `threshold_bytes` (blocks at least that
    large are mmapped and unmapped when freed). Returns False, changing nothing, where the C
    library has no mallopt (not glibc) or refuses the value."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        LOGGER.debug("No mallopt in the C library: the allocator keeps its own mmap threshold")
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, threshold_bytes))
