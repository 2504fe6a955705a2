"""What every command shares: one line on stderr for an error, and the exit code it maps to."""

from __future__ import annotations

import functools
import signal
import sys
from collections.abc import Callable
from typing import ParamSpec

import typer

from markit import MarkitError

__all__ = ["reporting", "say"]

P = ParamSpec("P")


def say(message: str) -> None:
    """*message* as one line on stderr, after ``markit:``."""
    sys.stderr.write(f"markit: {message}\n")


def reporting(command: Callable[P, None]) -> Callable[P, None]:
    """Run *command*, turning a markit error into one stderr line and its exit code.

    Usage errors typer finds itself (unknown flag, bad choice) exit 2 with its message;
    a signal exits 128 + its number, as a shell reports it: Ctrl-C 130, SIGTERM 143.
    Cleanup of partial output happens where the output is written.
    """

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        signal.signal(signal.SIGTERM, _interrupt)  # `timeout`, CI runners: clean up as for Ctrl-C
        try:
            command(*args, **kwargs)
        except MarkitError as error:
            say(str(error))
            raise typer.Exit(error.exit_code) from None
        except _Terminated as stop:
            say(f"terminated ({signal.Signals(stop.signum).name}); nothing was kept")
            raise typer.Exit(128 + stop.signum) from None
        except KeyboardInterrupt:
            say("interrupted; nothing was kept")
            raise typer.Exit(128 + signal.SIGINT) from None

    return run


class _Terminated(KeyboardInterrupt):
    """A signal other than Ctrl-C's: a KeyboardInterrupt, so every cleanup that Ctrl-C runs runs for it too."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _interrupt(signum: int, frame: object) -> None:
    raise _Terminated(signum)

