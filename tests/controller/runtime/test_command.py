"""`faiss-operator run`: its flags, their defaults and the errors for bad values."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from faiss_operator.controller.runtime import command, handlers


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="faiss-operator run")
    command.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_defaults_watch_every_namespace_with_no_endpoints() -> None:
    args = parse()
    assert (args.namespace, args.liveness, args.metrics_port, args.analysis_interval, args.resync) == ([], None, 0, 10.0, 300.0)
    assert (args.priority, args.standby) == (None, False)


def test_flags_are_read() -> None:
    args = parse("--namespace", "a", "-n", "b", "--liveness", "8080", "--metrics-port", "9100", "--analysis-interval", "0.5")
    assert (args.namespace, args.liveness, args.metrics_port, args.analysis_interval) == (
        ["a", "b"], "http://0.0.0.0:8080/healthz", 9100, 0.5,
    )  # fmt: skip
    assert parse("--liveness", "http://127.0.0.1:9/healthz").liveness == "http://127.0.0.1:9/healthz"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--metrics-port", "70000"], "'70000' is not a TCP port (0-65535)"),
        (["--analysis-interval", "0"], "'0' must be more than 0 seconds"),
        (["--resync", "soon"], "'soon' is not a number of seconds"),
        (["--liveness", "tcp://x:1"], "'tcp://x:1': give a port or an http:// URL"),
        (["--verbose", "--quiet"], "not allowed with argument"),
        (["--watch-server-timeout", "300.5"], "'300.5' must be a whole number of seconds above 0"),
    ],
)
def test_bad_values_are_refused_with_the_reason(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse(*argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_help_documents_every_flag() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "faiss_operator.cli", "run", "--help"], capture_output=True, text=True, check=True
    )
    for flag in ("--namespace", "--liveness", "--metrics-port", "--analysis-interval", "--analysis-timeout", "--resync",
                 "--watch-server-timeout", "--watch-client-timeout", "--watch-connect-timeout", "--priority", "--standby", "--verbose", "--quiet"):  # fmt: skip
        assert flag in done.stdout


def test_watch_timeouts_are_explicit_and_read_from_the_flags() -> None:
    defaults = command.watch_timeouts(parse())
    assert defaults == handlers.WatchTimeouts(server_seconds=300, client_seconds=330.0, connect_seconds=30.0)
    assert isinstance(defaults.server_seconds, int)  # the API server refuses timeoutSeconds=300.0 (400)
    args = parse("--watch-server-timeout", "60", "--watch-client-timeout", "90", "--watch-connect-timeout", "5")
    assert command.watch_timeouts(args) == handlers.WatchTimeouts(
        server_seconds=60, client_seconds=90.0, connect_seconds=5.0
    )


def test_a_client_timeout_not_longer_than_the_server_timeout_exits_2_with_the_reason(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = parse("--watch-server-timeout", "600", "--watch-client-timeout", "600")
    assert command.run(args) == 2
    assert capsys.readouterr().err == (
        "faiss-operator run: the client timeout (600s) must be longer than the server timeout (600s), "
        "or every watch is cut by the client before the server ends it\n"
    )


def test_without_a_cluster_it_exits_1_with_the_reason(tmp_path: object) -> None:
    env = {"KUBECONFIG": "/nonexistent/kubeconfig", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "faiss_operator.cli", "run"], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 1
    # The file is named, rather than the in-cluster config the client would fall back to (issue 19).
    assert done.stderr.splitlines()[-1] == (
        "faiss-operator run: KUBECONFIG names /nonexistent/kubeconfig, which does not exist"
    )


def test_a_bad_object_store_setting_exits_2_naming_the_variable(tmp_path: object) -> None:
    env = {"KUBECONFIG": "/nonexistent/kubeconfig", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "FAISS_S3_ENDPOINT": "storage:9000"}
    done = subprocess.run(
        [sys.executable, "-m", "faiss_operator.cli", "run"], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.startswith("faiss-operator run: the operator's object store settings (FAISS_S3_ENDPOINT")
    assert "endpoint: String should match pattern" in done.stderr


def test_an_environment_the_config_file_rule_refuses_stops_the_operator_naming_each_variable(tmp_path: object) -> None:
    # Issue 19, item 4: v0.8 leftovers and misspelt variables were silently ignored.
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "KUBECONFIG": "/nonexistent/kubeconfig",
           "FAISS_INDEX_TYPE": "HNSW", "FAISS_NLIST": "100", "FAISS_CONFIG_EFSEARCH": "64"}
    done = subprocess.run(
        [sys.executable, "-m", "faiss_operator.cli", "run"], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 1
    refused = [line for line in done.stderr.splitlines() if line.startswith("faiss-operator run:")]
    assert len(refused) == 2, done.stderr
    assert refused[0].startswith("faiss-operator run: refused environment: FAISS_CONFIG_EFSEARCH: 'efsearch' is not "
                                 "a parameter of any index type; known: FAISS_CONFIG_EF_CONSTRUCTION, ")
    assert refused[1] == ("faiss-operator run: refused environment: FAISS_NLIST: nlist is not a parameter of "
                          "FAISS_INDEX_TYPE=HNSW (it belongs to IVF and IVFPQ); unset it or change FAISS_INDEX_TYPE")


def test_an_ignored_config_file_and_an_unknown_variable_are_logged_at_start(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from faiss_operator.controller.runtime import command

    caplog.set_level(logging.WARNING, logger="faiss_operator.controller")
    assert command.environment_is_usable(
        # FAISS_S3_* is the operator's own (the object store), never reported.
        {"FAISS_CONFIG_FILE": "/etc/faiss.yaml", "FAISS_USE_GPU": "1", "FAISS_S3_REGION": "us-east-1"}
    )
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, "Ignored environment variable: FAISS_USE_GPU: not a variable faiss-operator reads (ignored)"),
        (logging.WARNING, "Ignored environment variable: FAISS_CONFIG_FILE: the operator reads no config file; put "
                          "its values in the FaissIndex spec or the chart's ml.faiss values"),
    ]
