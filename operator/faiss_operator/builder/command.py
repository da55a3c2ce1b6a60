"""`faiss-operator build`: the build Job's main program.

Turns flags into a BuildRequest, runs the pipeline, and reports the outcome three ways: the exit
code (one per kind of failure, builder/exit_codes.py), the log, and a compact JSON report in the
termination log that the controller reads from the pod status.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Any

from faiss_operator.builder import allocator, exit_codes, pipeline, publish, report as reports
from faiss_operator.contract import pod_args, pod_logs
from faiss_operator.index import config as index_config
from faiss_operator.sources import http, s3

logger = logging.getLogger("faiss_operator.builder")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # The flags a build Job is given, declared once in the contract; then those for hand use.
    pod_args.add_flags(parser, pod_args.BuildArgs.FLAGS, choices={
        "--index-type": index_config.INDEX_TYPES, "--metric": [m.value for m in index_config.Metric],
    })  # fmt: skip
    parser.add_argument("--metadata-id-key", default="id", help="the metadata key holding each line's id")
    parser.add_argument("--queries", help="held-out evaluation queries (.npy/.fvecs); default: a sample of the source")
    parser.add_argument("--config-file", help="YAML config file (also $FAISS_CONFIG_FILE)")
    parser.add_argument("--seed", type=pod_args.whole_number(0, below=2**32), default=0,
                        help="seed of the query sample and of training")
    parser.add_argument("--max-download-bytes", type=pod_args.whole_number(1), default=http.DEFAULT_MAX_BYTES,
                        help="largest http(s):// download")
    parser.add_argument("--download-attempts", type=pod_args.whole_number(1), default=4,
                        help="tries of an http(s):// download before the build fails")
    pod_logs.add_log_level(parser)


def run(args: argparse.Namespace) -> int:
    pod_logs.configure(args.log_level)
    allocator.fix_mmap_threshold()  # before FAISS allocates its first list (builder/allocator.py)
    termination_log = args.termination_log or reports.default_termination_log(os.environ)
    try:
        request = _request(args)
        if termination_log is not None:
            running = _Running(termination_log, args)
            request = dataclasses.replace(request, on_input=running.measured, on_progress=running.progressed)
        if s3.is_s3(args.out):
            report = publish.build_and_upload(
                destination=args.out, scratch=args.scratch, env=None, attempts=args.download_attempts,
                overwrite=args.overwrite,
                build=lambda local: pipeline.build(dataclasses.replace(request, out=local, overwrite=False)),
            )
        else:
            report = pipeline.build(request)
    except Exception as error:
        code = exit_codes.exit_code_for(error)
        if code is exit_codes.ExitCode.UNEXPECTED:
            logger.exception("Build failed unexpectedly")
        else:
            logger.error("Build failed: reason=%s error=%s", code.name, error)
        if termination_log is not None:
            reports.write_termination_log(termination_log, _failure(code, error, args))
        return int(code)
    if termination_log is not None:
        reports.write_termination_log(termination_log, report)
    logger.info("Build succeeded: artifact=%s vectors=%d recall=%.4f p99_ms=%.3f build_seconds=%.1f",
                report["artifact"], report["vectors"], report["recall"], report["p99_ms"], report["build_seconds"])
    return 0




def _request(args: argparse.Namespace) -> pipeline.BuildRequest:
    config: dict[str, Any] | None = None
    if args.config:
        try:
            config = json.loads(args.config)
        except json.JSONDecodeError as error:
            raise index_config.ConfigError(f"--config: not valid JSON: {error}") from None
        if not isinstance(config, dict):
            raise index_config.ConfigError("--config: expected a JSON object of config keys")
    for name in ("eval_queries", "k", "max_download_bytes", "download_attempts"):
        if getattr(args, name) < 1:
            raise index_config.ConfigError(f"--{name.replace('_', '-')}: must be >= 1 (got {getattr(args, name)})")
    return pipeline.BuildRequest(
        source=args.source,
        out=Path(args.out),
        ids=args.ids,
        metadata=args.metadata,
        metadata_id_key=args.metadata_id_key,
        queries=args.queries,
        index_type=args.index_type,
        config=config,
        config_file=args.config_file,
        dimension=args.dimension,
        metric=args.metric,
        normalize=args.normalize,
        eval_queries=args.eval_queries,
        k=args.k,
        revision=args.revision,
        overwrite=args.overwrite,
        seed=args.seed,
        download=http.DownloadPolicy(max_bytes=args.max_download_bytes, attempts=args.download_attempts),
    )


class _Running:
    """The termination message while the build runs: replaced by the report or the failure, it
    is what a container killed for memory (OOMKilled) leaves behind. Written once the input is
    measured, then again at every progress line with the phase and the peak anonymous memory so
    far (`peak_anon_bytes`), so that the BuildOOMKilled message can say where it was and at how much."""

    def __init__(self, path: Path, args: argparse.Namespace) -> None:
        self._path = path
        self._fields: dict[str, Any] = {
            "status": "Running", "phase": "build", "revision": args.revision, "source": args.source,
        }
        self._measured = False

    def measured(self, fields: dict[str, Any]) -> None:
        self._fields.update(fields)
        self._measured = True
        reports.write_termination_log(self._path, self._fields)

    def progressed(self, line: dict[str, Any]) -> None:
        if not self._measured:
            return  # nothing worth leaving behind before the input is known
        self._fields.update(build_phase=line["phase"], percent=line["percent"], peak_anon_bytes=line["peak_anon_bytes"])
        reports.write_termination_log(self._path, self._fields)


def _failure(code: exit_codes.ExitCode, error: BaseException, args: argparse.Namespace) -> dict[str, Any]:
    return {
        "status": "Failed",
        "reason": code.name,
        "exit_code": int(code),
        "error": str(error) or type(error).__name__,
        "revision": args.revision,
        "source": args.source,
        "artifact": str(args.out),
    }
