"""Wait on a condition with a deadline: tests and scenarios never sleep a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from kubernetes.client.exceptions import ApiException

T = TypeVar("T")


def wait_for(check: Callable[[], T], timeout: float, what: str, *, interval: float = 0.2) -> T:
    """Call `check` until it returns something truthy and return that; API errors count as "not yet".

    Raises AssertionError naming `what` (and the last error) after `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while True:
        try:
            result = check()
            if result:
                return result
        except ApiException as exc:
            last = exc
        if time.monotonic() > deadline:
            suffix = f" (last error: {last.status} {last.reason})" if isinstance(last, ApiException) else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{suffix}")
        time.sleep(interval)
