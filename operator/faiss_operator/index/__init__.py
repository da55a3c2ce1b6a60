"""Pure FAISS: index types and their typed configs, build, search, save/load, evaluation, tuning.

Knows nothing of Kubernetes or HTTP; the build Job, the serving pods and the tuner stand on it.
"""

from faiss_operator.index.artifact import ArtifactError
from faiss_operator.index.config import ConfigError, Metric
from faiss_operator.index.factory import TrainingError
from faiss_operator.index.faiss_index import FAISSIndex, IndexStateError, InputError, SearchResult
from faiss_operator.index.records import RecordError
from faiss_operator.index.tuner import FAISSTuner, TuningError, TuningReport, TuningResult, TuningTarget

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
