"""The exceptions markit raises, and the exit code each one maps to.

One base, :class:`MarkitError`; each concrete error also inherits the builtin
it refines, so callers can catch either. The CLI prints ``str(error)`` as one
line on stderr and exits with ``error.exit_code``; nothing else is shown.
"""

from __future__ import annotations

__all__ = [
    "EXIT_BAD",
    "EXIT_OK",
    "EXIT_USAGE",
    "ArchiveError",
    "ConflictError",
    "InputError",
    "MarkitError",
    "OutputError",
    "UsageError",
]

EXIT_OK = 0
EXIT_BAD = 1  # the input or archive is bad, or the operation was refused
EXIT_USAGE = 2  # the command line is wrong: unknown flag, bad value, missing path


class MarkitError(Exception):
    """Base of every error markit reports to a user."""

    exit_code = EXIT_BAD


class UsageError(MarkitError, ValueError):
    """The command line asks for something that cannot be: exit 2."""

    exit_code = EXIT_USAGE


class InputError(MarkitError, ValueError):
    """An input (model folder, handler, symlink, name) is not usable."""


class ConflictError(InputError):
    """Two inputs would land on the same archive name."""


class OutputError(MarkitError, OSError):
    """The archive cannot be written where it was asked for."""


class ArchiveError(MarkitError, ValueError):
    """An archive being read is malformed or unsafe."""
