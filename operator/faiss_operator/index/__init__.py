"""Pure FAISS: index types and their typed configs, build, search, save/load, evaluation, tuning.

Knows nothing of Kubernetes or HTTP; the build Job, the serving pods and the tuner stand on it.
The names below load lazily (PEP 562), so that importing a light submodule such as
`faiss_operator.index.config` (the operator reads configs) does not load libfaiss or numpy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from faiss_operator.index.artifact import ArtifactError as ArtifactError
    from faiss_operator.index.config import ConfigError as ConfigError
    from faiss_operator.index.config import Metric as Metric
    from faiss_operator.index.factory import TrainingError as TrainingError
    from faiss_operator.index.faiss_index import FAISSIndex as FAISSIndex
    from faiss_operator.index.faiss_index import IndexStateError as IndexStateError
    from faiss_operator.index.faiss_index import InputError as InputError
    from faiss_operator.index.faiss_index import SearchResult as SearchResult
    from faiss_operator.index.records import RecordError as RecordError
    from faiss_operator.index.tuner import FAISSTuner as FAISSTuner
    from faiss_operator.index.tuner import TuningError as TuningError
    from faiss_operator.index.tuner import TuningReport as TuningReport
    from faiss_operator.index.tuner import TuningResult as TuningResult
    from faiss_operator.index.tuner import TuningTarget as TuningTarget

_SOURCES = {
    "ArtifactError": "artifact",
    "ConfigError": "config",
    "Metric": "config",
    "TrainingError": "factory",
    "FAISSIndex": "faiss_index",
    "IndexStateError": "faiss_index",
    "InputError": "faiss_index",
    "SearchResult": "faiss_index",
    "RecordError": "records",
    "FAISSTuner": "tuner",
    "TuningError": "tuner",
    "TuningReport": "tuner",
    "TuningResult": "tuner",
    "TuningTarget": "tuner",
}

__all__ = [
    "ArtifactError",
    "ConfigError",
    "FAISSIndex",
    "FAISSTuner",
    "IndexStateError",
    "InputError",
    "Metric",
    "RecordError",
    "SearchResult",
    "TrainingError",
    "TuningError",
    "TuningReport",
    "TuningResult",
    "TuningTarget",
]


def __getattr__(name: str) -> Any:
    if name not in _SOURCES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_SOURCES[name]}"), name)
    globals()[name] = value
    return value
