"""The one command line, `faiss-operator`, and its subcommands.

Each subcommand lives in the package that owns it and is imported only when chosen, so that the
serving pod never imports the controller's Kubernetes libraries and the operator never imports
the HTTP server. A subcommand module provides `add_arguments(parser)` and `run(args) -> int`.
A listed subcommand whose module is absent from the installed package answers with one line on
stderr and exit 2, never a traceback, and so is a subcommand's bad usage (`Parser`). Every
subcommand's `--help` shows each flag's default (`HelpFormatter`), and `faiss-operator --version`
prints the installed version.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn, Protocol, cast

from faiss_operator import __version__

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("faiss_operator.controller.runtime.command", "run the operator (the Kopf controller)"),
    "build": ("faiss_operator.builder.command", "build, evaluate and write an index artifact (the build Job)"),
    "serve": ("faiss_operator.server.command", "serve an index artifact over HTTP (the serving pods)"),
    "download": ("faiss_operator.server.download_command",
                 "download an s3:// artifact to a local directory and verify it (the serving pods' init step)"),
    "delete-artifact": ("faiss_operator.sources.delete_command", "delete an s3:// artifact (the cleanup Jobs)"),
    "crd": ("faiss_operator.api.command", "print the FaissIndex CRD generated from the models (--out FILE to write it)"),
    "tune": ("faiss_operator.api.tune_command", "sweep index parameters and rank the results"),
    "config": ("faiss_operator.index.config_command", "show the effective index config and its sources"),
    "validate": ("faiss_operator.api.validate_command", "check FaissIndex files offline, before kubectl apply"),
    "import": ("faiss_operator.builder.import_command",
               "turn a faiss.write_index file (+ ids, metadata) into an artifact that load_index and serve take"),
}


class HelpFormatter(argparse.HelpFormatter):
    """argparse's own formatter, with each flag's default shown after its help: `(default: 8080)`.

    A default of None, False or an empty list means "not given" and is not shown, nor is one the
    help text already states (it says `default`)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            action.option_strings
            and not any(default is unset for unset in (None, False, argparse.SUPPRESS))
            and default != []
            and "default" not in text
        ):
            text += " (default: %(default)s)"
        return text


class Parser(argparse.ArgumentParser):
    """A subcommand's parser: bad usage is one line on stderr and exit 2, not the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


class Subcommand(Protocol):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="faiss-operator", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"faiss-operator {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, summary) in SUBCOMMANDS.items():
        commands.add_parser(name, help=summary, add_help=False)
    chosen = next((a for a in arguments if not a.startswith("-")), None)
    if chosen not in SUBCOMMANDS:
        try:
            parser.parse_args(arguments)
        except SystemExit as exit_:  # --version and --help exit 0, bad usage 2
            return exit_.code if isinstance(exit_.code, int) else 2
        return 2
    module_name, summary = SUBCOMMANDS[chosen]
    try:
        module = cast(Subcommand, importlib.import_module(module_name))
    except ModuleNotFoundError as error:
        # Only the subcommand's own module being absent (a command another change is still
        # adding); a missing dependency inside an existing module is a real error and raises.
        if error.name is None or not module_name.startswith(error.name):
            raise
        print(f"faiss-operator: the {chosen!r} command is not available in this build ({module_name} is missing)",
              file=sys.stderr)
        return 2
    sub_parser = Parser(prog=f"faiss-operator {chosen}", description=summary, formatter_class=HelpFormatter)
    module.add_arguments(sub_parser)
    try:
        args = sub_parser.parse_args(arguments[arguments.index(chosen) + 1 :])
    except SystemExit as exit_:  # --help exits 0, bad usage 2
        return exit_.code if isinstance(exit_.code, int) else 2
    return module.run(args)


if __name__ == "__main__":
    sys.exit(main())
