"""Stories that share one index run in order; once one fails, the later ones are skipped with the
reason, instead of failing for a state they never got.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest


@dataclasses.dataclass
class Chain:
    """Shared state of one index's stories: `values` carries what a story hands to the next."""

    failed: str | None = None
    values: dict[str, Any] = dataclasses.field(default_factory=dict)

    @contextlib.contextmanager
    def story(self, name: str) -> Iterator[None]:
        """Run one story: skipped if an earlier story of the chain failed; a failure here is recorded."""
        if self.failed is not None:
            pytest.skip(f"{name}: not run, an earlier story of this index failed ({self.failed})")
        try:
            yield
        except BaseException as error:
            if not isinstance(error, pytest.skip.Exception):
                self.failed = name
            raise
