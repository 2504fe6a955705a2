"""The ``markit`` command line: create, inspect, verify, unpack, sign, diff (typer commands only).

Each command parses its options, calls the library, and prints. Every
:class:`~markit.errors.MarkitError` becomes one line on stderr and its exit
code (1 bad input or refused, 2 usage); no traceback reaches a user.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from markit import __version__
from markit.cli.common import reporting
from markit.cli.create import create
from markit.cli.diff import diff_cmd
from markit.cli.read import inspect_cmd, unpack_cmd, verify_cmd
from markit.cli.sign import sign_cmd

__all__ = ["app", "main"]

app = typer.Typer(
    name="markit",
    help="Create, inspect, verify, unpack, sign and diff TorchServe / MMS model and workflow archives"
         " (.mar, .war, .tar.gz, folders; local, stdin, s3://, gs://, http(s)://).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"markit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print markit's version and exit.")
    ] = False,
) -> None:
    """Create, inspect, verify, unpack, sign and diff TorchServe / MMS model and workflow archives."""


app.command("create", no_args_is_help=True)(reporting(create))
app.command("inspect")(reporting(inspect_cmd))
app.command("verify")(reporting(verify_cmd))
app.command("unpack")(reporting(unpack_cmd))
app.command("sign", no_args_is_help=True)(reporting(sign_cmd))
app.command("diff")(reporting(diff_cmd))


def main() -> None:
    """The console script.

    When the first argument names a command, only that command is given to typer: typer builds each
    command's options from its annotations on every run, and the other commands' cost 8-12 ms of
    ``inspect``'s ~80 (Python's own start-up is ~30). ``markit --help`` and anything else get them all.
    """
    every = app.registered_commands
    app.registered_commands = [c for c in every if sys.argv[1:2] == [_command_name(c)]] or every
    try:
        app()
    finally:
        app.registered_commands = every


def _command_name(info: typer.models.CommandInfo) -> str:
    return info.name or (info.callback.__name__ if info.callback else "")



if __name__ == "__main__":  # pragma: no cover
    main()
