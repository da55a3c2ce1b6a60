"""A client that searches one address without pause, in a thread, and counts what failed.

Each search opens a new connection (urllib does not keep connections alive), so through a Service
every query picks a ready endpoint afresh, as independent clients do. A failure is anything but a
200 answer with k ids: a refused or reset connection, a timeout, an HTTP error, a short answer.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import numpy as np


@dataclasses.dataclass
class Tally:
    ok: int = 0
    failed: int = 0
    # The first failures, each "<seconds since start> <what>", for the failure message.
    failures: list[str] = dataclasses.field(default_factory=list)
    # Answers per revision, from the server's X-Faiss-Revision header.
    revisions: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)


class SearchLoop:
    """Search `http://<host>:<port>/v1/search` with the rows of `queries` in turn until stopped."""

    def __init__(self, host: str, port: int, queries: np.ndarray[Any, np.dtype[np.float32]], *, k: int = 5,
                 timeout_seconds: float = 5.0, keep_failures: int = 20, interval_seconds: float = 0.02) -> None:
        self.url = f"http://{host}:{port}/v1/search"
        self.queries = queries
        self.k = k
        self.timeout_seconds = timeout_seconds
        self.keep_failures = keep_failures
        # Pacing between queries so the loop leaves CPU to the pods it measures (2-core machines).
        self.interval_seconds = interval_seconds
        self._tally = Tally()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="search-loop", daemon=True)
        self._started = 0.0

    def start(self) -> SearchLoop:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def stop(self) -> Tally:
        self._stop.set()
        self._thread.join(timeout=self.timeout_seconds + 5)
        return self.tally()

    def tally(self) -> Tally:
        with self._lock:
            return dataclasses.replace(self._tally, failures=list(self._tally.failures),
                                       revisions=collections.Counter(self._tally.revisions))

    def _record(self, ok: bool, what: str = "", revision: str | None = None) -> None:
        with self._lock:
            if ok:
                self._tally.ok += 1
                if revision:
                    self._tally.revisions[revision] += 1
            else:
                self._tally.failed += 1
                if len(self._tally.failures) < self.keep_failures:
                    self._tally.failures.append(f"{time.monotonic() - self._started:.1f}s {what}")

    def _run(self) -> None:
        i = 0
        while not self._stop.wait(self.interval_seconds):
            query = self.queries[i % len(self.queries)]
            i += 1
            request = urllib.request.Request(
                self.url, data=json.dumps({"vector": query.tolist(), "k": self.k}).encode(),
                headers={"Content-Type": "application/json"}, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_seconds) as answer:
                    result = json.loads(answer.read())
                    revision = answer.headers.get("x-faiss-revision")
                ids = result.get("ids")
                if not isinstance(ids, list) or len(ids) != self.k:
                    self._record(False, f"answer without {self.k} ids: {str(result)[:200]}")
                else:
                    self._record(True, revision=revision)
            except urllib.error.HTTPError as error:
                self._record(False, f"HTTP {error.code}: {error.read()[:200]!r}")
            except (urllib.error.URLError, OSError, ValueError) as error:
                self._record(False, f"{type(error).__name__}: {error}")
