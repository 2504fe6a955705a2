"""The ``markit`` command line: create, inspect, verify, unpack.

Each command parses its options, calls the library, and prints. Every
:class:`~markit.errors.MarkitError` becomes one line on stderr and its exit
code (1 bad input or refused, 2 usage); no traceback reaches a user.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Annotated, ParamSpec

import typer

from markit import __version__
from markit.errors import MarkitError, UsageError

if TYPE_CHECKING:
    from markit.plan import Plan

__all__ = ["app", "main", "reporting"]

P = ParamSpec("P")

app = typer.Typer(
    name="markit",
    help="Create, inspect, verify and unpack TorchServe / MMS model archives (.mar, .tar.gz, folders).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class ArchiveFormat(str, Enum):
    default = "default"
    zip_store = "zip-store"
    tgz = "tgz"
    no_archive = "no-archive"


class Compression(str, Enum):
    auto = "auto"
    store = "store"
    deflate = "deflate"


class Runtime(str, Enum):
    python = "python"
    python2 = "python2"
    python3 = "python3"
    LSP = "LSP"


def _say(message: str) -> None:
    sys.stderr.write(f"markit: {message}\n")


def reporting(command: Callable[P, None]) -> Callable[P, None]:
    """Run *command*, turning a markit error into one stderr line and its exit code.

    Usage errors typer finds itself (unknown flag, bad choice) exit 2 with its message;
    Ctrl-C exits 130. Cleanup of partial output happens where the output is written.
    """

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        signal.signal(signal.SIGTERM, _interrupt)  # `timeout`, CI runners: clean up as for Ctrl-C
        try:
            command(*args, **kwargs)
        except MarkitError as error:
            _say(str(error))
            raise typer.Exit(error.exit_code) from None
        except KeyboardInterrupt:
            _say("interrupted; nothing was kept")
            raise typer.Exit(130) from None

    return run


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


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
    """Create, inspect, verify and unpack TorchServe / MMS model archives."""


def _epoch() -> float | None:
    value = os.environ.get("SOURCE_DATE_EPOCH")
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise UsageError(f"SOURCE_DATE_EPOCH={value!r}: expected a whole number of seconds")
    return float(value)


@app.command(no_args_is_help=True)
@reporting
def create(
    model_name: Annotated[str, typer.Option("--model-name", help="Model name: the archive is MODEL_NAME.mar. Letters, digits, '_', '-', '.'; starts with a letter or digit.")],
    handler: Annotated[str, typer.Option("--handler", help="Handler: module[:function] (MMS style, e.g. handler:handle), a .py file (copied to the archive root), or a TorchServe built-in (image_classifier, ...).")],
    model_path: Annotated[str | None, typer.Option("--model-path", help="Folder whose files (minus excluded ones) go to the archive root, subfolders kept.")] = None,
    serialized_file: Annotated[str | None, typer.Option("--serialized-file", help="Weights file (.pt, .pth, .bin, ...): archive root, base name; recorded as model.serializedFile.")] = None,
    model_file: Annotated[str | None, typer.Option("--model-file", help="Model definition .py: archive root; recorded as model.modelFile.")] = None,
    extra_files: Annotated[str | None, typer.Option("--extra-files", help="Comma list of files, folders or globs: a file goes to the root by base name, a folder's contents to the root with subfolders kept.")] = None,
    requirements_file: Annotated[str | None, typer.Option("--requirements-file", "-r", help="requirements.txt for the model: archive root; model.requirementsFile.")] = None,
    config_file: Annotated[str | None, typer.Option("--config-file", "-c", help="Model config YAML: archive root; model.configFile.")] = None,
    version: Annotated[str | None, typer.Option("--version", "-v", help="Model version, written as model.modelVersion (left out if not given).")] = None,
    runtime: Annotated[Runtime, typer.Option("--runtime", help="Runtime written in the manifest.")] = Runtime.python,
    export_path: Annotated[str | None, typer.Option("--export-path", help="Folder the archive is written to (default: the current folder).")] = None,
    archive_format: Annotated[ArchiveFormat | None, typer.Option("--archive-format", help="default: .mar zip, compressed as --compression says; zip-store: .mar, nothing compressed; tgz: .tar.gz under a MODEL_NAME/ top folder; no-archive: a folder. (default: from -o's name, else default)", show_default=False)] = None,
    compression: Annotated[Compression, typer.Option("--compression", help="For the default format. auto: deflate code/text suffixes (.py .json .txt .yaml ...) and other files up to 1 MiB; store weights and compressed suffixes (.bin .pt .safetensors .onnx ...) and other files over 1 MiB. store / deflate: every file.")] = Compression.auto,
    output: Annotated[str | None, typer.Option("--output", "-o", help="Archive path; '-' writes the archive to stdout (zip unless --archive-format tgz).")] = None,
    exclude: Annotated[list[str] | None, typer.Option("--exclude", help="Leave out files matching this glob (archive name, or any path component if the glob has no '/'). Repeatable.")] = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite an existing archive.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan (every file, included or excluded and why, and the manifest); write nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan (with --dry-run) or the result as one JSON object on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar, no summary line.")] = False,
) -> None:
    """Pack a model into an archive TorchServe and MMS load (torch-model-archiver / model-archiver flags).

    Excluded from folders: hidden files and folders, __MACOSX, .DS_Store, MANIFEST.json,
    *.pyc, __pycache__, a MAR-INF/ folder, the output itself, and --exclude globs.
    The archive holds MAR-INF/MANIFEST.json and MAR-INF/RECORD (SHA-256 and size of every file).
    With SOURCE_DATE_EPOCH set, output is byte-for-byte reproducible.
    """
    from markit.create import Sources, gather_inputs, write_plan
    from markit.plan import Request, archive_filename, format_for_output, make_plan
    from markit.progress import Progress, human_bytes
    from markit.sink import check_destination

    started = time.monotonic()
    fmt = archive_format.value if archive_format else None
    if output is not None and export_path is not None:
        raise UsageError("give -o/--output or --export-path, not both")
    fmt = format_for_output(output, fmt) if output is not None else (fmt or "default")
    to_stdout = output == "-"
    if to_stdout and not dry_run and sys.stdout.isatty():
        raise UsageError("-o -: stdout is a terminal; redirect it to a file or a pipe, or give -o FILE")
    target = None if to_stdout else (output or os.path.join(export_path or ".", archive_filename(model_name, fmt)))
    if target is not None and not dry_run:
        check_destination(target, force=force, what="output folder" if fmt == "no-archive" else "archive")
    sources = Sources(model_path, serialized_file, model_file, handler, extra_files, requirements_file, config_file)
    request = Request(
        model_name=model_name, handler=handler, archiver_version=f"markit {__version__}", now=time.time(),
        runtime=runtime.value, version=version, archive_format=fmt, compression=compression.value,
        excludes=tuple(exclude or ()), epoch=_epoch(),
        output_path=os.path.realpath(target) if target else None,
    )
    plan = make_plan(request, gather_inputs(sources))
    for note in plan.notes:
        _say(f"note: {note}")
    if dry_run:
        _print_plan(plan, target or "-", as_json)
        return
    progress = Progress.for_terminal(plan.total_size, model_name, quiet=quiet or as_json)
    written = write_plan(plan, target, force=force, progress=progress)
    seconds = time.monotonic() - started
    if as_json and not to_stdout:
        print(json.dumps({"archive": written.target, "format": fmt, "files": written.files,
                          "input_bytes": written.input_bytes, "output_bytes": written.output_bytes,
                          "excluded": len(plan.exclusions), "seconds": round(seconds, 3)}))
    elif not quiet:
        out = f", {human_bytes(written.output_bytes)} out" if written.output_bytes else ""
        _say(f"wrote {written.target} ({fmt}): {written.files} files, {human_bytes(written.input_bytes)} in{out},"
             f" {len(plan.exclusions)} excluded, {seconds:.2f} s")


def _print_plan(plan: Plan, target: str, as_json: bool) -> None:
    from markit.progress import human_bytes

    if as_json:
        print(json.dumps({"output": target, **plan.to_json()}, indent=2))
        return
    print(f"plan: {plan.model_name} ({plan.archive_format}) -> {target}")
    for e in plan.entries:
        print(f"  include  {e.name}  {human_bytes(e.size)}  {e.method} ({e.why})  from {e.origin}")
    for x in plan.exclusions:
        print(f"  exclude  {x.name}  ({x.reason})  from {x.origin}")
    print("  generate MAR-INF/MANIFEST.json, MAR-INF/RECORD")
    print("manifest:")
    print(plan.manifest_data.decode())


# The read side: markit.readcli imports only typer; each command imports its modules when it runs.
from markit.readcli import inspect_cmd, unpack_cmd, verify_cmd

app.command("inspect")(reporting(inspect_cmd))
app.command("verify")(reporting(verify_cmd))
app.command("unpack")(reporting(unpack_cmd))


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
