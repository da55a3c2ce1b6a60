"""The command lines of the pod programs as data: `faiss-operator build` (the build Job),
`faiss-operator serve` (the serving pods), and for s3:// artifacts `download` (the serving pods'
init container) and `delete-artifact` (the cleanup Jobs).

The controller fills a BuildArgs or ServeArgs and puts `.argv()` in the pod; `parse` reads such
an argv back into the same dataclass, so every flag is spelled once, here, for both directions.
The programs' own parsers (builder/command.py, server/command.py) accept more flags for hand use;
tests/contracts runs them with exactly these command lines.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from faiss_operator.contract import build_report

PROGRAM = "faiss-operator"

# On SIGTERM a serving pod keeps answering (unready) while its endpoint is removed, then finishes
# in-flight requests; the pod's grace period covers both with a margin before SIGKILL.
DRAIN_DELAY_SECONDS = 5
DRAIN_SECONDS = 20


class ArgvError(ValueError):
    """An argv that is not a command line of the pod program; the message says why."""


def _json(value: Mapping[str, Any]) -> str:
    return json.dumps(dict(value), sort_keys=True, separators=(",", ":"))


def _number(value: float) -> str:
    return f"{value:g}"


@dataclasses.dataclass(frozen=True, kw_only=True)
class BuildArgs:
    """`faiss-operator build ...`: build, evaluate, write the artifact and the JSON report.

    `config` is the whole effective config in snake_case, search-time parameters included, so the
    Job measures recall and latency as the revision will serve. `overwrite`: a retried Job (after
    a pod was killed between writing the artifact and exiting, or a `retry` annotation) rebuilds
    into the same path, replacing it atomically.
    """

    source: str
    out: str
    index_type: str
    config: Mapping[str, Any]
    dimension: int
    metric: str
    normalize: bool = False
    k: int
    queries: int
    ids: str | None = None
    metadata: str | None = None
    revision: str | None = None
    termination_log: str = build_report.TERMINATION_LOG
    overwrite: bool = True
    scratch: str | None = None  # where an s3:// artifact is built before its upload

    def argv(self) -> list[str]:
        args = [
            PROGRAM, "build",
            "--source", self.source,
            "--out", self.out,
            "--index-type", self.index_type,
            "--config", _json(self.config),
            "--dimension", str(self.dimension),
            "--metric", self.metric,
            "--k", str(self.k),
            "--eval-queries", str(self.queries),
            "--termination-log", self.termination_log,
        ]  # fmt: skip
        if self.overwrite:
            args.append("--overwrite")
        if self.normalize:
            args.append("--normalize")
        for flag, value in (("--ids", self.ids), ("--metadata", self.metadata), ("--revision", self.revision),
                            ("--scratch", self.scratch)):
            if value is not None:
                args += [flag, value]
        return args

    @classmethod
    def parse(cls, argv: Sequence[str]) -> BuildArgs:
        """The BuildArgs that `argv` (as `.argv()` writes it, program name first) stands for."""
        parser = _parser("build")
        for flag in ("--source", "--out", "--index-type", "--metric", "--termination-log"):
            parser.add_argument(flag, required=True)
        parser.add_argument("--config", required=True, type=json_object)
        parser.add_argument("--dimension", required=True, type=int)
        parser.add_argument("--k", required=True, type=int)
        parser.add_argument("--eval-queries", required=True, type=int)
        parser.add_argument("--overwrite", action="store_true")
        parser.add_argument("--normalize", action="store_true")
        for flag in ("--ids", "--metadata", "--revision", "--scratch"):
            parser.add_argument(flag)
        values = _parse(parser, argv, "build")
        return cls(
            source=values.source,
            out=values.out,
            index_type=values.index_type,
            config=values.config,
            dimension=values.dimension,
            metric=values.metric,
            normalize=values.normalize,
            k=values.k,
            queries=values.eval_queries,
            ids=values.ids,
            metadata=values.metadata,
            revision=values.revision,
            termination_log=values.termination_log,
            overwrite=values.overwrite,
            scratch=values.scratch,
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class ServeArgs:
    """`faiss-operator serve ...`: load and verify the artifact, then answer on `port` with
    `workers` processes (None: serve's own default, the CPUs its cgroup allows); the
    `search_params` (snake_case) become the defaults of every search."""

    artifact: str
    port: int
    revision: str
    search_params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    workers: int | None = None
    drain_delay_seconds: float = DRAIN_DELAY_SECONDS
    drain_seconds: float = DRAIN_SECONDS

    def argv(self) -> list[str]:
        args = [
            PROGRAM, "serve", "--artifact", self.artifact, "--port", str(self.port), "--revision", self.revision,
            "--drain-delay", _number(self.drain_delay_seconds), "--drain-seconds", _number(self.drain_seconds),
        ]  # fmt: skip
        if self.workers is not None:
            args += ["--workers", str(self.workers)]
        if self.search_params:
            args += ["--search-params", _json(self.search_params)]
        return args

    @classmethod
    def parse(cls, argv: Sequence[str]) -> ServeArgs:
        """The ServeArgs that `argv` (as `.argv()` writes it, program name first) stands for."""
        parser = _parser("serve")
        parser.add_argument("--artifact", required=True)
        parser.add_argument("--port", required=True, type=int)
        parser.add_argument("--revision", required=True)
        parser.add_argument("--drain-delay", required=True, type=float)
        parser.add_argument("--drain-seconds", required=True, type=float)
        parser.add_argument("--workers", type=int)
        parser.add_argument("--search-params", type=json_object, default={})
        values = _parse(parser, argv, "serve")
        return cls(
            artifact=values.artifact,
            port=values.port,
            revision=values.revision,
            search_params=values.search_params,
            workers=values.workers,
            drain_delay_seconds=values.drain_delay,
            drain_seconds=values.drain_seconds,
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class DownloadArgs:
    """`faiss-operator download ...`: the serving pods' init container for an s3:// artifact;
    downloads it to `out`, checks every file against the manifest, gives up after the deadline."""

    artifact: str
    out: str
    deadline_seconds: int
    termination_log: str = build_report.TERMINATION_LOG

    def argv(self) -> list[str]:
        return [
            PROGRAM, "download", "--artifact", self.artifact, "--out", self.out,
            "--deadline-seconds", str(self.deadline_seconds), "--termination-log", self.termination_log,
        ]  # fmt: skip

    @classmethod
    def parse(cls, argv: Sequence[str]) -> DownloadArgs:
        parser = _parser("download")
        for flag in ("--artifact", "--out", "--termination-log"):
            parser.add_argument(flag, required=True)
        parser.add_argument("--deadline-seconds", required=True, type=int)
        values = _parse(parser, argv, "download")
        return cls(artifact=values.artifact, out=values.out, deadline_seconds=values.deadline_seconds,
                   termination_log=values.termination_log)


@dataclasses.dataclass(frozen=True, kw_only=True)
class DeleteArtifactArgs:
    """`faiss-operator delete-artifact ...`: a cleanup Job's program for an s3:// artifact."""

    artifact: str

    def argv(self) -> list[str]:
        return [PROGRAM, "delete-artifact", "--artifact", self.artifact]

    @classmethod
    def parse(cls, argv: Sequence[str]) -> DeleteArtifactArgs:
        parser = _parser("delete-artifact")
        parser.add_argument("--artifact", required=True)
        return cls(artifact=_parse(parser, argv, "delete-artifact").artifact)


def json_object(text: str) -> dict[str, Any]:
    """An argparse type: a flag's value that must be a JSON object (--config, --search-params)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not JSON ({error.msg} at position {error.pos})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {type(value).__name__}")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse that raises ArgvError where it would print and exit."""

    def error(self, message: str) -> typing.NoReturn:
        raise ArgvError(f"{self.prog}: {message}")


def _parser(command: str) -> argparse.ArgumentParser:
    return _Parser(prog=f"{PROGRAM} {command}", add_help=False, exit_on_error=False)


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str], command: str) -> argparse.Namespace:
    if list(argv[:2]) != [PROGRAM, command]:
        raise ArgvError(f"expected {PROGRAM} {command} ..., got {' '.join(argv[:2])!r}")
    try:
        values, unknown = parser.parse_known_args(list(argv[2:]))
    except argparse.ArgumentError as error:
        raise ArgvError(f"{parser.prog}: {error}") from None
    if unknown:
        raise ArgvError(f"{parser.prog}: flags no pod is given: {' '.join(unknown)}")
    return values
