"""`faiss-operator delete-artifact --artifact s3://bucket/prefix`: the cleanup Jobs' program for
artifacts in object storage (a claim's are removed with rmtree). The manifest goes first, so a
half-deleted artifact can never be downloaded; deleting what is already gone succeeds."""

from __future__ import annotations

import argparse
import logging
import os

from faiss_operator.contract import pod_args, pod_logs
from faiss_operator.sources import artifact_store, errors, s3

logger = logging.getLogger("faiss_operator.sources.delete")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pod_args.add_flags(parser, pod_args.DeleteArtifactArgs.FLAGS)  # declared once in the contract
    parser.add_argument("--attempts", type=int, default=5, help="attempts per request (the SDK's retries)")
    pod_logs.add_log_level(parser)


def run(args: argparse.Namespace) -> int:
    pod_logs.configure(args.log_level)
    try:
        prefix = s3.parse(args.artifact, prefix=True)
        if not prefix.key:
            raise errors.UnsupportedSourceError(f"{args.artifact}: refusing to delete a whole bucket")
        settings = s3.Settings.from_environment(os.environ, attempts=max(1, args.attempts))
        deleted = artifact_store.delete(s3.client(settings), prefix, settings=settings)
    except errors.SourceError as error:
        logger.error("Delete failed: %s", error)
        return 1
    logger.info("Deleted artifact: uri=%s objects=%d", prefix.uri, deleted)
    return 0
