"""The one command line, `faiss-operator`, and its subcommands.

Each subcommand lives in the package that owns it and is imported only when chosen, so that the
serving pod never imports the controller's Kubernetes libraries and the operator never imports
the HTTP server. A subcommand module provides `add_arguments(parser)` and `run(args) -> int`.
A listed subcommand whose module is absent from the installed package answers with one line on
stderr and exit 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Protocol, cast

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("faiss_operator.controller.runtime.command", "run the operator (the Kopf controller)"),
    "build": ("faiss_operator.builder.command", "build, evaluate and write an index artifact (the build Job)"),
    "serve": ("faiss_operator.server.command", "serve an index artifact over HTTP (the serving pods)"),
    "download": ("faiss_operator.server.download_command",
                 "download an s3:// artifact to a local directory and verify it (the serving pods' init step)"),
    "delete-artifact": ("faiss_operator.sources.delete_command", "delete an s3:// artifact (the cleanup Jobs)"),
    "crd": ("faiss_operator.api.command", "print the FaissIndex CRD generated from the models (--out FILE to write it)"),
    "tune": ("faiss_operator.index.command", "sweep index parameters and rank the results"),
    "config": ("faiss_operator.index.config_command", "show the effective index config and its sources"),
    "validate": ("faiss_operator.api.validate_command", "check FaissIndex files offline, before kubectl apply"),
}


class Subcommand(Protocol):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="faiss-operator", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, summary) in SUBCOMMANDS.items():
        commands.add_parser(name, help=summary, add_help=False)
    chosen = next((a for a in arguments if not a.startswith("-")), None)
    if chosen not in SUBCOMMANDS:
        parser.parse_args(arguments)
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
    sub_parser = argparse.ArgumentParser(prog=f"faiss-operator {chosen}", description=summary)
    module.add_arguments(sub_parser)
    return module.run(sub_parser.parse_args(arguments[arguments.index(chosen) + 1 :]))


if __name__ == "__main__":
    sys.exit(main())
