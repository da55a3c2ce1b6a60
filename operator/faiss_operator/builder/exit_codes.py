"""One exit code per way a build can fail, so the controller can tell them apart without logs.

The controller reads the code from the pod status and the message from the termination log;
a code names the kind of failure (what to fix), the message the detail.
"""

from __future__ import annotations

import enum

from faiss_operator.index import config as index_config
from faiss_operator.sources import artifact_store, errors


class ExitCode(enum.IntEnum):
    OK = 0
    UNEXPECTED = 1
    USAGE = 2
    INVALID_CONFIG = 3
    SOURCE_NOT_FOUND = 10
    SOURCE_FETCH_FAILED = 11
    SOURCE_TOO_LARGE = 12
    SOURCE_UNSUPPORTED = 13
    SOURCE_MALFORMED = 14
    SOURCE_EMPTY = 15
    DIMENSION_MISMATCH = 16
    NON_FINITE_VALUES = 17
    DUPLICATE_IDS = 18
    ID_COUNT_MISMATCH = 19
    METADATA_MISMATCH = 20
    DEGENERATE_VECTORS = 21
    OUTPUT_EXISTS = 30
    OUTPUT_FAILED = 31
    BUILD_FAILED = 32
    ARTIFACT_UPLOAD_FAILED = 33


class OutputExistsError(Exception):
    """The artifact directory already exists and --overwrite was not given."""


class OutputError(Exception):
    """The artifact could not be written."""


class BuildError(Exception):
    """FAISS could not build the index from this input (e.g. too few vectors to train)."""


_BY_CLASS: tuple[tuple[type[BaseException], ExitCode], ...] = (
    (artifact_store.ArtifactTransferError, ExitCode.ARTIFACT_UPLOAD_FAILED),
    (errors.SourceNotFoundError, ExitCode.SOURCE_NOT_FOUND),
    (errors.SourceFetchError, ExitCode.SOURCE_FETCH_FAILED),
    (errors.DownloadWriteError, ExitCode.OUTPUT_FAILED),
    (errors.SourceTooLargeError, ExitCode.SOURCE_TOO_LARGE),
    (errors.UnsupportedSourceError, ExitCode.SOURCE_UNSUPPORTED),
    (errors.MalformedSourceError, ExitCode.SOURCE_MALFORMED),
    (errors.EmptySourceError, ExitCode.SOURCE_EMPTY),
    (errors.DimensionMismatchError, ExitCode.DIMENSION_MISMATCH),
    (errors.NonFiniteValuesError, ExitCode.NON_FINITE_VALUES),
    (errors.DuplicateIdsError, ExitCode.DUPLICATE_IDS),
    (errors.IdCountMismatchError, ExitCode.ID_COUNT_MISMATCH),
    (errors.MetadataMismatchError, ExitCode.METADATA_MISMATCH),
    (errors.DegenerateVectorsError, ExitCode.DEGENERATE_VECTORS),
    (index_config.ConfigError, ExitCode.INVALID_CONFIG),
    (OutputExistsError, ExitCode.OUTPUT_EXISTS),
    (OutputError, ExitCode.OUTPUT_FAILED),
    (BuildError, ExitCode.BUILD_FAILED),
)


def exit_code_for(error: BaseException) -> ExitCode:
    for cls, code in _BY_CLASS:
        if isinstance(error, cls):
            return code
    return ExitCode.UNEXPECTED
