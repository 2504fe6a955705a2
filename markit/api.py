"""markit's public functions: create, inspect, verify and unpack, as the command line runs them.

Keyword arguments are named as the command line's long options (``--model-path`` is
``model_path``); each function returns the data the command's ``--json`` prints (the
result's ``to_json()``) and raises :class:`~markit.errors.MarkitError` subclasses.
Heavy modules are imported when a function runs, so ``import markit`` stays cheap.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from markit.errors import UsageError
from markit.model.limits import Limits
from markit.version import VERSION

if TYPE_CHECKING:
    from markit.read.summary import ArchiveInfo
    from markit.read.unpack import Unpacked
    from markit.read.verify import Report
    from markit.write.plan import Plan

__all__ = ["Created", "create", "inspect", "unpack", "verify"]


@dataclass(frozen=True)
class Created:
    """What :func:`create` did: the plan it followed and, unless a dry run, what it wrote."""

    plan: Plan
    """Every file included or excluded, with its reason, and the manifest."""
    archive: str
    """The archive path (a folder for ``no-archive``), or ``-`` for stdout."""
    written: bool
    """False for a dry run."""
    files: int = 0
    """Members written, MAR-INF files included."""
    input_bytes: int = 0
    """Bytes of input read."""
    output_bytes: int = 0
    """Bytes of archive written (0 for a folder)."""
    seconds: float = 0.0
    """Wall time of the whole call."""

    def to_json(self) -> dict[str, Any]:
        """What ``create --json`` prints: the plan for a dry run, else the archive written."""
        if not self.written:
            return {"output": self.archive, **self.plan.to_json()}
        return {"archive": self.archive, "format": self.plan.archive_format, "files": self.files,
                "input_bytes": self.input_bytes, "output_bytes": self.output_bytes,
                "excluded": len(self.plan.exclusions), "seconds": round(self.seconds, 3)}


def create(
    *,
    model_name: str,
    handler: str,
    model_path: str | None = None,
    serialized_file: str | None = None,
    model_file: str | None = None,
    extra_files: str | Sequence[str] | None = None,
    requirements_file: str | None = None,
    config_file: str | None = None,
    version: str | None = None,
    runtime: str = "python",
    export_path: str | None = None,
    archive_format: str | None = None,
    compression: str = "auto",
    output: str | None = None,
    exclude: Sequence[str] = (),
    force: bool = False,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Created:
    """Archive a model as ``markit create`` does; *output* ``"-"`` writes to stdout.

    *progress*, if given, is called with (bytes read, bytes to read) as the data flows.
    With *dry_run*, nothing is checked on the output side and nothing is written.
    """
    from markit.engine.datapass import counter
    from markit.write.create import Sources, gather_inputs, write_plan
    from markit.write.plan import Request, archive_filename, format_for_output, make_plan

    started = time.monotonic()
    if output is not None and export_path is not None:
        raise UsageError("give -o/--output or --export-path, not both")
    fmt = format_for_output(output, archive_format) if output is not None else (archive_format or "default")
    target = None if output == "-" else (output or os.path.join(export_path or ".", archive_filename(model_name, fmt)))
    if target is not None and not dry_run:
        _check_output(target, fmt, export_path, force=force)
    extras = extra_files if extra_files is None or isinstance(extra_files, str) else ",".join(extra_files)
    sources = Sources(model_path, serialized_file, model_file, handler, extras, requirements_file, config_file)
    request = Request(
        model_name=model_name, handler=handler, archiver_version=f"markit {VERSION}", now=time.time(),
        runtime=runtime, version=version, archive_format=fmt, compression=compression,
        excludes=tuple(exclude), epoch=_epoch(), output_path=os.path.realpath(target) if target else None,
    )
    plan = make_plan(request, gather_inputs(sources))
    if dry_run:
        return Created(plan, target or "-", written=False)
    written = write_plan(plan, target, force=force, progress=counter(progress, plan.total_size))
    return Created(plan, written.target, True, written.files, written.input_bytes, written.output_bytes,
                   time.monotonic() - started)


def _check_output(target: str, fmt: str, export_path: str | None, *, force: bool) -> None:
    """Refuse an output that cannot be written, before any input is read. A missing ``--export-path`` is
    refused, not created, as torch-model-archiver and MMS model-archiver refuse it."""
    from markit.storage.sinks import check_destination

    check_destination(target, force=force, what="output folder" if fmt == "no-archive" else "archive",
                      shown=None if export_path is None else f"--export-path {export_path}")


def _epoch() -> float | None:
    value = os.environ.get("SOURCE_DATE_EPOCH")
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise UsageError(f"SOURCE_DATE_EPOCH={value!r}: expected a whole number of seconds")
    return float(value)


def inspect(path: str) -> ArchiveInfo:
    """What the archive at *path* (a file, a folder, or ``-`` for stdin) holds, as ``markit inspect`` shows it.

    A zip file is listed from its central directory: no entry data is read.
    :class:`~markit.errors.ArchiveError` if it is missing or cannot be read through.
    """
    from markit.read.summary import summarize

    return summarize(path)


def verify(path: str, *, limits: Limits | None = None, progress: Callable[[int, int], None] | None = None) -> Report:
    """Every problem of the archive at *path*, as ``markit verify`` reports them; nothing is raised for a
    bad archive (a missing or unreadable path is a problem of its report too).

    *progress*, if given, is called with (file bytes checked, bytes the archive's index declares, or 0
    when it has none: a stream, a tar).
    """
    from markit.read.verify import verify_path

    return verify_path(path, limits or Limits(), progress)


def unpack(path: str, dest: str | None = None, *, force: bool = False, limits: Limits | None = None,
           progress: Callable[[int, int], None] | None = None) -> Unpacked:
    """Unpack *path* into *dest* (default: the archive's name without its suffix), only if it has no error.

    :class:`~markit.read.unpack.Refused` (with every problem) if it has one; nothing is written then.
    *progress* is called as for :func:`verify`.
    """
    from markit.read.unpack import unpack as unpack_archive

    if dest == "":
        raise UsageError("-d/--dest is empty: name the folder to create, or leave -d out for the default")
    return unpack_archive(path, dest, force=force, limits=limits or Limits(), progress=progress)
