"""One exception class per way a build's input can be unusable.

The build Job turns each class into a distinct exit code (builder/exit_codes.py), so that the
controller and a human reading `kubectl describe pod` can tell "the file is not there" from "the
file has NaNs" without parsing messages. Every message names the file and what was expected.
"""

from __future__ import annotations


class SourceError(Exception):
    """The input cannot be used; the message says which file and why."""


class SourceNotFoundError(SourceError):
    """A local path (or the path a pvc:// URI maps to) does not exist or cannot be read."""


class SourceFetchError(SourceError):
    """An http(s) download failed after its retries, or the server refused it."""


class SourceTooLargeError(SourceError):
    """A download is bigger than the allowed size."""


class UnsupportedSourceError(SourceError):
    """The URI scheme, file extension or array dtype is not one this program reads."""


class MalformedSourceError(SourceError):
    """The file does not parse as its format says (a truncated .fvecs, a non-JSON line, ...)."""


class EmptySourceError(SourceError):
    """The input holds no vectors."""


class DimensionMismatchError(SourceError):
    """The vectors' dimension is not the one the index was declared with."""


class NonFiniteValuesError(SourceError):
    """Some vectors hold NaN or infinity."""


class DegenerateVectorsError(SourceError):
    """Vectors the metric cannot rank: (near-)zero norms under cosine (index/data_quality.py)."""


class DuplicateIdsError(SourceError):
    """The same id appears more than once."""


class IdCountMismatchError(SourceError):
    """The ids file does not hold one id per vector."""


class MetadataMismatchError(SourceError):
    """The metadata does not hold exactly one record per id."""


class DownloadWriteError(SourceError):
    """A download could not be written to local disk (full or read-only); retrying cannot help."""
