"""`faiss-operator download`: a serving pod's init step for an artifact in object storage.

Downloads the revision's artifact from `s3://bucket/prefix` to node-local storage (an emptyDir),
verifies every file against the manifest, and exits 0; `serve` then memory-maps the local copy as
it does a claim's. Any failure — no manifest (never committed), a missing or corrupt object, the
store unreachable, the deadline passed — exits non-zero with the reason in the log and in the
termination log, so the pod never becomes Ready and `kubectl describe pod` says why.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
from pathlib import Path
from types import FrameType

from faiss_operator.contract import pod_args, pod_logs
from faiss_operator.index import artifact
from faiss_operator.sources import artifact_store, errors, s3

logger = logging.getLogger("faiss_operator.server.download")

DEFAULT_TERMINATION_LOG = Path("/dev/termination-log")
DEFAULT_MAX_BYTES = 1 << 40


class DeadlineExceeded(BaseException):
    """The download took longer than --deadline-seconds. A BaseException, as KeyboardInterrupt is,
    so that the SDK's retry machinery (which catches Exception) cannot swallow it."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # The flags the init container is given, declared once in the contract; then those for hand use.
    pod_args.add_flags(parser, pod_args.DownloadArgs.FLAGS)
    parser.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES,
                        help="refuse an artifact larger than this (the local volume's size)")
    parser.add_argument("--attempts", type=int, default=5, help="attempts per request (the SDK's retries)")
    pod_logs.add_log_level(parser)


def run(args: argparse.Namespace) -> int:
    pod_logs.configure(args.log_level)
    termination_log = args.termination_log
    if termination_log is None and DEFAULT_TERMINATION_LOG.parent.is_dir() and os.access(DEFAULT_TERMINATION_LOG, os.W_OK):
        termination_log = DEFAULT_TERMINATION_LOG
    for name in ("deadline_seconds", "max_bytes", "attempts"):
        if getattr(args, name) < 1:
            return _fail(termination_log, f"--{name.replace('_', '-')} must be >= 1 (got {getattr(args, name)})", 2)
    previous = signal.signal(signal.SIGALRM, _deadline_passed)
    signal.alarm(args.deadline_seconds)
    try:
        if _already_here(args.out):
            return 0
        prefix = s3.parse(args.artifact, prefix=True)
        settings = s3.Settings.from_environment(os.environ, attempts=args.attempts)
        manifest = artifact_store.download(
            s3.client(settings), prefix, args.out, settings=settings, max_bytes=args.max_bytes,
        )
    except DeadlineExceeded:
        _fail(termination_log, f"downloading {args.artifact} took longer than the deadline of "
              f"{args.deadline_seconds}s", 1)
        # Transfers still running in the SDK's threads would hold the exit until they time out.
        logging.shutdown()
        os._exit(1)
    except (errors.SourceError, artifact.ArtifactError, OSError) as error:
        return _fail(termination_log, str(error), 1)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    logger.info("Artifact ready: uri=%s out=%s files=%d revision=%s",
                args.artifact, args.out, len(manifest["files"]), manifest.get("revision"))
    return 0


def _already_here(out: Path) -> bool:
    """A copy left by an earlier run of this init step (the pod's sandbox was recreated, the
    emptyDir kept): used when every file verifies, else removed so the download starts clean."""
    if not out.exists():
        return False
    try:
        manifest = artifact.verify_artifact(out)
    except (artifact.ArtifactError, OSError) as error:
        logger.warning("Removing an earlier incomplete download: out=%s reason=%s", out, error)
        shutil.rmtree(out, ignore_errors=True)
        return False
    logger.info("Artifact already downloaded and verified: out=%s revision=%s", out, manifest.get("revision"))
    return True


def _deadline_passed(signum: int, frame: FrameType | None) -> None:
    raise DeadlineExceeded()


def _fail(termination_log: Path | None, message: str, code: int) -> int:
    logger.error("Download failed: %s", message)
    if termination_log is not None:
        try:
            termination_log.write_text(message[:4000])
        except OSError as error:
            logger.warning("Could not write the termination log: path=%s error=%s", termination_log, error)
    return code
