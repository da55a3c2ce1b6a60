"""The pod programs' command lines as data: what `.argv()` writes, `parse` reads back whole, and
the real programs' own parsers read the same values from it."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from faiss_operator.builder import command as build_command
from faiss_operator.contract import pod_args
from faiss_operator.server import command as serve_command

FULL_BUILD = pod_args.BuildArgs(
    source="/mnt/pvc/embeddings/v.npy", out="/mnt/pvc/faiss-artifacts/alerts/k1", index_type="HNSW",
    config={"m": 16, "ef_construction": 100, "ef_search": 32}, dimension=384, metric="InnerProduct",
    normalize=True, k=10, queries=500, ids="/mnt/pvc/embeddings/ids.txt", metadata="/mnt/pvc/embeddings/m.jsonl",
    revision="5d41c2aa00",
)  # fmt: skip
SMALL_BUILD = pod_args.BuildArgs(
    source="https://example.org/v.npy", out="/mnt/pvc/a/k2", index_type="Flat", config={}, dimension=3,
    metric="L2", k=1, queries=1,
)  # fmt: skip
FULL_SERVE = pod_args.ServeArgs(
    artifact="/mnt/pvc/faiss-artifacts/alerts/k1", port=8080, revision="5d41c2aa00",
    search_params={"ef_search": 96}, workers=2,
)  # fmt: skip
SMALL_SERVE = pod_args.ServeArgs(artifact="/a", port=9000, revision="r")


def test_the_build_command_line_is_the_one_the_job_runs() -> None:
    assert FULL_BUILD.argv() == [
        "faiss-operator", "build",
        "--source", "/mnt/pvc/embeddings/v.npy",
        "--out", "/mnt/pvc/faiss-artifacts/alerts/k1",
        "--index-type", "HNSW",
        "--config", '{"ef_construction":100,"ef_search":32,"m":16}',
        "--dimension", "384",
        "--metric", "InnerProduct",
        "--k", "10",
        "--eval-queries", "500",
        "--termination-log", "/dev/termination-log",
        "--overwrite",
        "--normalize",
        "--ids", "/mnt/pvc/embeddings/ids.txt",
        "--metadata", "/mnt/pvc/embeddings/m.jsonl",
        "--revision", "5d41c2aa00",
    ]  # fmt: skip


def test_the_serve_command_line_is_the_one_the_pods_run() -> None:
    assert FULL_SERVE.argv() == [
        "faiss-operator", "serve", "--artifact", "/mnt/pvc/faiss-artifacts/alerts/k1", "--port", "8080",
        "--revision", "5d41c2aa00", "--drain-delay", "5", "--drain-seconds", "20", "--workers", "2",
        "--search-params", '{"ef_search":96}',
    ]  # fmt: skip
    assert SMALL_SERVE.argv() == [
        "faiss-operator", "serve", "--artifact", "/a", "--port", "9000", "--revision", "r",
        "--drain-delay", "5", "--drain-seconds", "20",
    ]  # fmt: skip


@pytest.mark.parametrize("args", [FULL_BUILD, SMALL_BUILD], ids=["full", "small"])
def test_a_build_command_line_parses_back_whole(args: pod_args.BuildArgs) -> None:
    assert pod_args.BuildArgs.parse(args.argv()) == args


@pytest.mark.parametrize("args", [FULL_SERVE, SMALL_SERVE], ids=["full", "small"])
def test_a_serve_command_line_parses_back_whole(args: pod_args.ServeArgs) -> None:
    assert pod_args.ServeArgs.parse(args.argv()) == args


def test_the_builder_reads_the_same_values() -> None:
    parser = argparse.ArgumentParser()
    build_command.add_arguments(parser)
    got = parser.parse_args(FULL_BUILD.argv()[2:])
    assert (
        got.source, got.out, got.index_type, got.dimension, got.metric, got.normalize, got.k, got.eval_queries,
        got.ids, got.metadata, got.revision, got.overwrite, got.termination_log, json.loads(got.config),
    ) == (
        FULL_BUILD.source, FULL_BUILD.out, FULL_BUILD.index_type, FULL_BUILD.dimension, FULL_BUILD.metric,
        True, FULL_BUILD.k, FULL_BUILD.queries, FULL_BUILD.ids, FULL_BUILD.metadata, FULL_BUILD.revision, True,
        Path(FULL_BUILD.termination_log), FULL_BUILD.config,
    )  # fmt: skip


def test_the_server_reads_the_same_values() -> None:
    parser = argparse.ArgumentParser()
    serve_command.add_arguments(parser)
    got = parser.parse_args(FULL_SERVE.argv()[2:])
    assert (got.artifact, got.port, got.revision, got.search_params, got.workers, got.drain_delay, got.drain_seconds) == (
        Path(FULL_SERVE.artifact), 8080, "5d41c2aa00", {"ef_search": 96}, 2, 5.0, 20.0
    )


def without(argv: list[str], flag: str) -> list[str]:
    """`argv` less `flag` and its value."""
    at = argv.index(flag)
    return argv[:at] + argv[at + 2 :]


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["faiss-operator", "serve", "--artifact", "/a"], "expected faiss-operator build ..., got 'faiss-operator serve'"),
        (
            [*SMALL_BUILD.argv(), "--seed", "3"],
            "faiss-operator build: flags no pod is given: --seed 3",
        ),
        (
            without(SMALL_BUILD.argv(), "--k"),
            "faiss-operator build: the following arguments are required: --k",
        ),
        (
            ["faiss-operator", "build", *[a if a != "{}" else "[1]" for a in SMALL_BUILD.argv()[2:]]],
            "faiss-operator build: argument --config: expected a JSON object, got list",
        ),
    ],
    ids=["other program", "unknown flag", "missing flag", "config not an object"],
)
def test_an_argv_that_is_not_a_build_command_line_says_why(argv: list[str], error: str) -> None:
    with pytest.raises(pod_args.ArgvError) as raised:
        pod_args.BuildArgs.parse(argv)
    assert str(raised.value) == error


def test_the_download_and_delete_command_lines_parse_back_and_their_programs_read_them() -> None:
    """s3:// artifacts: the serving pods' init container and the cleanup Jobs' program."""
    import argparse

    from faiss_operator.server import download_command
    from faiss_operator.sources import delete_command

    download = pod_args.DownloadArgs(artifact="s3://b/idx/k1", out="/var/lib/faiss-operator/artifact/current",
                                      deadline_seconds=1800)
    assert pod_args.DownloadArgs.parse(download.argv()) == download
    parser = argparse.ArgumentParser()
    download_command.add_arguments(parser)
    read = parser.parse_args(download.argv()[2:])
    assert (read.artifact, str(read.out), read.deadline_seconds, str(read.termination_log)) == (
        "s3://b/idx/k1", "/var/lib/faiss-operator/artifact/current", 1800, "/dev/termination-log")

    delete = pod_args.DeleteArtifactArgs(artifact="s3://b/idx/k1")
    assert pod_args.DeleteArtifactArgs.parse(delete.argv()) == delete
    parser = argparse.ArgumentParser()
    delete_command.add_arguments(parser)
    assert parser.parse_args(delete.argv()[2:]).artifact == "s3://b/idx/k1"

    build = pod_args.BuildArgs(source="s3://e/v.npy", out="s3://b/idx/k1", index_type="Flat", config={},
                               dimension=8, metric="L2", k=10, queries=100, scratch="/var/lib/faiss-operator/scratch")
    assert pod_args.BuildArgs.parse(build.argv()) == build
    assert build.argv()[-2:] == ["--scratch", "/var/lib/faiss-operator/scratch"]


def _programs() -> list[tuple[type[Any], Any]]:
    from faiss_operator.server import download_command
    from faiss_operator.sources import delete_command

    return [
        (pod_args.BuildArgs, build_command.add_arguments),
        (pod_args.ServeArgs, serve_command.add_arguments),
        (pod_args.DownloadArgs, download_command.add_arguments),
        (pod_args.DeleteArtifactArgs, delete_command.add_arguments),
    ]


@pytest.mark.parametrize(("args_type", "add_arguments"), _programs(), ids=["build", "serve", "download", "delete"])
def test_each_field_is_one_flag_and_the_program_adds_that_very_flag(args_type: type[Any], add_arguments: Any) -> None:
    # One declaration per flag: the dataclass's fields are exactly its flags, and the program's
    # parser holds each of them with the declared type, default and help.
    assert sorted(flag.field for flag in args_type.FLAGS) == sorted(f.name for f in dataclasses.fields(args_type))
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    actions = {action.option_strings[0]: action for action in parser._actions if action.option_strings}
    for flag in args_type.FLAGS:
        action = actions[flag.name]
        assert (action.dest, action.help) == (flag.dest, flag.help)
        if not flag.switch:
            assert (action.type, action.default) == (flag.type, flag.default)
