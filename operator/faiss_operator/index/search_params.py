"""The one rule for search-time parameters (`ef_search`, `nprobe`): which are valid, and what runs.

Three callers need it — the library's per-call `params`, the serving pod's request `params` and
`--search-params` defaults, and the controller's revision config (through the same config
models) — so it lives here, once:

* `check` validates parameters given for an index type: a key the type has no search-time
  parameter of, a value that is not a positive integer, or one outside the config model's bounds
  is a SearchParamsError naming the field (`params.nprobe: ...`).
* `resolve` gives the parameters a search really uses once the index is built: the config's
  search-time values, overridden by the given ones, with `nprobe` clamped to the built index's
  `nlist` — probing more lists than exist probes them all, which is what FAISS itself does. So
  a value above nlist is never an error, whether it is the default (10, when the build chose
  nlist 2 for 100 vectors), a request's `params` or a revision's `--search-params`; `/v1/info`
  and the build report show the effective value.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import numpy as np

from faiss_operator.index import config as index_config


class SearchParamsError(ValueError):
    """Search parameters an index type cannot take; the message names the field."""


def check(index_type: str, params: Mapping[str, Any], *, where: str = "params") -> dict[str, int]:
    """`params` as validated ints; SearchParamsError naming `<where>.<key>` otherwise.

    Valid keys are the index type's SEARCH_TIME_FIELDS; values positive integers (not booleans)
    within the bounds of the type's config model (index/config.py).
    """
    if not isinstance(params, Mapping):
        raise SearchParamsError(f"{where}: expected a mapping of search parameters, got {type(params).__name__}")
    model = index_config.config_model_for(index_type)
    allowed = sorted(model.SEARCH_TIME_FIELDS)
    checked: dict[str, int] = {}
    for key, value in params.items():
        if key not in allowed:
            raise SearchParamsError(
                f"{where}.{key}: not a search-time parameter of index type {index_type!r}; "
                f"valid: {', '.join(allowed) or 'none'}"
            )
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
            raise SearchParamsError(f"{where}.{key}: expected a positive integer, got {value!r}")
        checked[key] = int(value)
        problem = _out_of_bounds(index_type, key, int(value))
        if problem is not None:
            raise SearchParamsError(problem.replace("config.", f"{where}."))
    return checked


@functools.lru_cache(maxsize=1024)
def _out_of_bounds(index_type: str, key: str, value: int) -> str | None:
    """The config model's complaint about `key=value`, or None; cached, as searches repeat values."""
    try:
        index_config.parse_config(index_type, {key: value})
    except index_config.ConfigError as error:
        return str(error)
    return None


def resolve(
    config: index_config.IndexConfig, *, nlist: int | None, overrides: Mapping[str, int] | None = None
) -> dict[str, int]:
    """The search-time parameters a search uses: config values, then `overrides` (already
    checked), with nprobe at most `nlist` (the built index's; None before the build)."""
    values: dict[str, int] = {**config.search_fields(), **(overrides or {})}
    if "nprobe" in values and nlist is not None:
        values["nprobe"] = index_config.effective_nprobe(values["nprobe"], nlist)
    return values
