"""The command lines of the pod programs as data: `faiss-operator build` (the build Job),
`faiss-operator serve` (the serving pods), and for s3:// artifacts `download` (the serving pods'
init container) and `delete-artifact` (the cleanup Jobs).

Every flag a pod is given is declared once, here, as a `Flag` (name, type, help, default, and
the dataclass field it carries): the controller fills a BuildArgs, ServeArgs, DownloadArgs or
DeleteArtifactArgs and puts `.argv()` in the pod; `parse` reads such an argv back into the same
dataclass; and the programs' own parsers (builder/command.py, server/command.py,
server/download_command.py, sources/delete_command.py) add these very flags with `add_flags`, so
a flag cannot exist on one side only. The programs add more flags of their own for hand use
(--seed, --max-k, ...), which no pod is given; tests/contracts runs the programs with exactly
these command lines.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Self

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
class Flag:
    """One flag of a pod program, declared once for the controller that writes it, the program
    that reads it, and `parse` that reads it back.

    `field` is the Args dataclass field it carries; `type`, `default`, `help` and `required` are
    the program's (`required`: by the program, for hand use). A pod's argv always has the flag,
    except a `switch` (written when true) and an `optional` one (written when set: not None, not
    empty). `encode` writes a value into the argv; `decode` turns what the program's `type` reads
    into the field's value (a Path back to str, the JSON text of --config to a mapping), and
    raises argparse.ArgumentTypeError for a value the field cannot hold."""

    name: str
    field: str
    help: str
    type: Callable[[str], Any] = str
    default: Any = None
    required: bool = False
    switch: bool = False
    optional: bool = False
    encode: Callable[[Any], str] = str
    decode: Callable[[Any], Any] | None = None

    @property
    def dest(self) -> str:
        """The attribute argparse stores the value in (`--eval-queries` -> `eval_queries`)."""
        return self.name.removeprefix("--").replace("-", "_")

    def add_to(
        self, parser: argparse.ArgumentParser, *, required: bool | None = None, choices: Sequence[str] | None = None
    ) -> None:
        if self.switch:
            parser.add_argument(self.name, action="store_true", help=self.help)
            return
        parser.add_argument(
            self.name, type=self.type, default=self.default, help=self.help, choices=choices,
            required=self.required if required is None else required,
        )  # fmt: skip


def add_flags(
    parser: argparse.ArgumentParser, flags: Sequence[Flag], *, choices: Mapping[str, Sequence[str]] | None = None
) -> None:
    """Add `flags` to a program's `parser`; `choices` (flag name -> values) for those whose values
    a lower layer than this one knows (the index types, the metrics)."""
    for flag in flags:
        flag.add_to(parser, choices=(choices or {}).get(flag.name))


def whole_number(minimum: int, *, below: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number from `minimum` on, and under `below` when given."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum or (below is not None and value >= below):
            bound = f"at least {minimum}" if below is None else f"from {minimum} to {below - 1}"
            raise argparse.ArgumentTypeError(f"{text!r}: must be {bound}")
        return value

    return parse


def tcp_port(text: str) -> int:
    """An argparse type: a TCP port, 1-65535."""
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (1-65535)")
    return int(text)


def _text(value: Any) -> str:
    return str(value)


def _path(text: str) -> pathlib.Path:
    return pathlib.Path(text)


class _Args:
    """What the four Args dataclasses share: `argv()` and `parse()` driven by their FLAGS."""

    COMMAND: ClassVar[str]
    FLAGS: ClassVar[tuple[Flag, ...]]

    def argv(self) -> list[str]:
        args = [PROGRAM, self.COMMAND]
        for flag in self.FLAGS:
            value = getattr(self, flag.field)
            if flag.switch:
                args += [flag.name] if value else []
            elif not (flag.optional and (value is None or value == {})):
                args += [flag.name, flag.encode(value)]
        return args

    @classmethod
    def parse(cls, argv: Sequence[str]) -> Self:
        """The Args that `argv` (as `.argv()` writes it, program name first) stands for."""
        parser = _parser(cls.COMMAND)
        for flag in cls.FLAGS:
            flag.add_to(parser, required=not (flag.switch or flag.optional))
        values = _parse(parser, argv, cls.COMMAND)
        fields: dict[str, Any] = {}
        for flag in cls.FLAGS:
            value = getattr(values, flag.dest)
            if flag.decode is not None and value is not None:
                try:
                    value = flag.decode(value)
                except argparse.ArgumentTypeError as error:
                    raise ArgvError(f"{parser.prog}: argument {flag.name}: {error}") from None
            fields[flag.field] = value
        return cls(**fields)


@dataclasses.dataclass(frozen=True, kw_only=True)
class BuildArgs(_Args):
    """`faiss-operator build ...`: build, evaluate, write the artifact and the JSON report.

    `config` is the whole effective config in snake_case, search-time parameters included, so the
    Job measures recall and latency as the revision will serve. `overwrite`: a retried Job (after
    a pod was killed between writing the artifact and exiting, or a `retry` annotation) rebuilds
    into the same path, replacing it atomically.
    """

    COMMAND: ClassVar[str] = "build"
    FLAGS: ClassVar[tuple[Flag, ...]] = (
        Flag(name="--source", field="source", required=True,
             help="embeddings: path, file://, pvc://<claim>/<path>, http(s)://; .npy or .fvecs"),
        Flag(name="--out", field="out", required=True,
             help="artifact to create: a directory (path, pvc:// mounted) or s3://<bucket>/<prefix>"),
        Flag(name="--index-type", field="index_type", help="index type (default: $FAISS_INDEX_TYPE, else HNSW)"),
        # The program reads the JSON itself (a bad one is a config error, exit code 3).
        Flag(name="--config", field="config", encode=_json, decode=lambda text: json_object(text),
             help='index config as JSON, e.g. \'{"m": 32, "ef_search": 64}\''),
        Flag(name="--dimension", field="dimension", type=whole_number(1),
             help="expected dimension; a mismatch fails before the build"),
        Flag(name="--metric", field="metric", default="L2",
             help="distance: L2, or InnerProduct (cosine with --normalize)"),
        Flag(name="--k", field="k", type=whole_number(1), default=10, help="neighbours per query for recall@k"),
        Flag(name="--eval-queries", field="queries", type=whole_number(1), default=1000,
             help="held-out queries the recall and latency are measured on"),
        Flag(name="--termination-log", field="termination_log", type=_path, decode=_text,
             help=f"file for the compact JSON report (default: {build_report.TERMINATION_LOG} inside a pod, "
             "else none)"),
        Flag(name="--overwrite", field="overwrite", switch=True, help="replace an existing artifact directory"),
        Flag(name="--normalize", field="normalize", switch=True,
             help="L2-normalize vectors (cosine with InnerProduct)"),
        Flag(name="--ids", field="ids", optional=True, help="ids: .npy of int64 or a text file with one id per line"),
        Flag(name="--metadata", field="metadata", optional=True,
             help="metadata: JSON lines, one object per vector, keyed by --metadata-id-key"),
        Flag(name="--revision", field="revision", optional=True,
             help="revision name recorded in the manifest and report"),
        Flag(name="--scratch", field="scratch", optional=True, type=_path, decode=_text,
             help="local directory an s3:// artifact is built in before its upload (default: $TMPDIR)"),
    )  # fmt: skip

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


@dataclasses.dataclass(frozen=True, kw_only=True)
class ServeArgs(_Args):
    """`faiss-operator serve ...`: load and verify the artifact, then answer on `port` with
    `workers` processes (None: serve's own default, the CPUs its cgroup allows); the
    `search_params` (snake_case) become the defaults of every search."""

    COMMAND: ClassVar[str] = "serve"
    FLAGS: ClassVar[tuple[Flag, ...]] = (
        Flag(name="--artifact", field="artifact", required=True, type=_path, decode=_text,
             help="artifact directory written by `build`"),
        Flag(name="--port", field="port", type=tcp_port, default=8080, help="TCP port to listen on (1-65535)"),
        Flag(name="--revision", field="revision",
             help="revision name to report (default: the artifact's own); a search-parameter-only revision "
             "serves an artifact built for another"),
        Flag(name="--drain-delay", field="drain_delay_seconds", type=float, default=0.0, encode=_number,
             help="after SIGTERM, seconds to keep serving (while /readyz says 503) before closing the listener, "
             "so endpoint removal can propagate"),
        Flag(name="--drain-seconds", field="drain_seconds", type=float, default=25.0, encode=_number,
             help="longest wait for in-flight requests after SIGTERM"),
        Flag(name="--workers", field="workers", optional=True, type=int,
             help="serving processes sharing the port (SO_REUSEPORT) and one mapped copy of the index "
             "(default: the CPUs the pod may use, from its cgroup CPU limit, else its CPU affinity)"),
        Flag(name="--search-params", field="search_params", optional=True, type=lambda text: json_object(text),
             default={}, encode=_json, help='default search-time parameters as JSON, e.g. \'{"ef_search": 128}\''),
    )  # fmt: skip

    artifact: str
    port: int
    revision: str
    search_params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    workers: int | None = None
    drain_delay_seconds: float = DRAIN_DELAY_SECONDS
    drain_seconds: float = DRAIN_SECONDS


@dataclasses.dataclass(frozen=True, kw_only=True)
class DownloadArgs(_Args):
    """`faiss-operator download ...`: the serving pods' init container for an s3:// artifact;
    downloads it to `out`, checks every file against the manifest, gives up after the deadline."""

    COMMAND: ClassVar[str] = "download"
    FLAGS: ClassVar[tuple[Flag, ...]] = (
        Flag(name="--artifact", field="artifact", required=True, help="the artifact's s3://<bucket>/<prefix>"),
        Flag(name="--out", field="out", required=True, type=_path, decode=_text,
             help="local directory to create (node-local storage)"),
        Flag(name="--deadline-seconds", field="deadline_seconds", type=int, default=1800,
             help="give up (exit non-zero, the pod stays unready) after this long"),
        Flag(name="--termination-log", field="termination_log", type=_path, decode=_text,
             help=f"file for the one-line reason of a failure (default: {build_report.TERMINATION_LOG} in a pod)"),
    )  # fmt: skip

    artifact: str
    out: str
    deadline_seconds: int
    termination_log: str = build_report.TERMINATION_LOG


@dataclasses.dataclass(frozen=True, kw_only=True)
class DeleteArtifactArgs(_Args):
    """`faiss-operator delete-artifact ...`: a cleanup Job's program for an s3:// artifact."""

    COMMAND: ClassVar[str] = "delete-artifact"
    FLAGS: ClassVar[tuple[Flag, ...]] = (
        Flag(name="--artifact", field="artifact", required=True, help="the artifact's s3://<bucket>/<prefix>"),
    )

    artifact: str


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
