"""The build's peak anonymous memory: what `build.resources.limits.memory` must hold.

A build reads its input through a memory map. Those pages are file-backed: they count in the
process's RSS (and VmHWM), but under a cgroup memory limit the kernel drops them rather than
kill the container. What it cannot drop is anonymous memory (the index, a converted chunk, a
training sample), `RssAnon` in /proc/self/status. The kernel keeps no high-water mark of
RssAnon alone, so a daemon thread samples it; a peak shorter than the interval can be missed,
which is why the build also samples at every progress line (`sample()`).
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from types import TracebackType

STATUS_FILE = Path("/proc/self/status")
INTERVAL_SECONDS = 0.02
_RSS_ANON = re.compile(rb"^RssAnon:\s+(\d+)\s+kB", re.MULTILINE)


def rss_anon_bytes(status_file: Path = STATUS_FILE) -> int | None:
    """The process's resident anonymous memory now, or None where /proc does not say (not Linux)."""
    try:
        found = _RSS_ANON.search(status_file.read_bytes())
    except OSError:
        return None
    return int(found.group(1)) * 1024 if found else None


class PeakAnonMemory:
    """`with PeakAnonMemory() as peak: ...; peak.bytes` — the highest RssAnon seen, or None."""

    def __init__(self, *, interval: float = INTERVAL_SECONDS, status_file: Path = STATUS_FILE) -> None:
        self._interval = interval
        self._status_file = status_file
        self._peak: int | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-anon-memory", daemon=True)

    @property
    def bytes(self) -> int | None:
        return self._peak

    def sample(self) -> int | None:
        """Read RssAnon now and keep it if it is the highest; returns the peak so far."""
        now = rss_anon_bytes(self._status_file)
        with self._lock:
            if now is not None and (self._peak is None or now > self._peak):
                self._peak = now
            return self._peak

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.sample()

    def __enter__(self) -> PeakAnonMemory:
        self.sample()
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()
