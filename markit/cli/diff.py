"""``markit diff OLD NEW``: what changed between two archives, as readable lines or one JSON object.

The lines read like ``git status`` with ``diff --stat``'s sizes: ``+`` an entry only NEW holds,
``-`` one only OLD holds, ``~`` one whose bytes differ (sizes old -> new), then a line per manifest
field that differs, then a count. Exit codes follow diff(1) and cmp(1): 0 the same contents, 1 they
differ, 2 trouble: a usage error, or an archive that cannot be read or that ``verify`` finds corrupt
(1 would read as "they differ").
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Annotated, Any, ParamSpec, Protocol

import typer

import markit
from markit.cli.common import say
from markit.cli.progress import Progress
from markit.cli.read import MaxEntries, MaxRatio, MaxSize, _contained, _limits
from markit.cli.show import shown

__all__ = ["EXIT_TROUBLE", "diff_cmd", "render"]

P = ParamSpec("P")
EXIT_TROUBLE = 2  # diff(1)'s code for "could not compare": 1 means "they differ"
NAME_WIDTH_MAX = 60  # characters of name column: a longer name pushes its own line's sizes right, not every line's

OldArg = Annotated[str, typer.Argument(help="The archive before: a .mar/zip, .tar, .tar.gz, a no-archive folder, - for"
                                       " stdin, or an s3://, gs://, http(s):// URL (read once, through).",
                                       show_default=False)]
NewArg = Annotated[str, typer.Argument(help="The archive after, as OLD (- for stdin, if OLD is not -).",
                                       show_default=False)]


def _troubled(command: Callable[P, None]) -> Callable[P, None]:
    """An archive that cannot be compared (any markit error but a usage one) is one line and exit 2."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            command(*args, **kwargs)
        except markit.UsageError:
            raise
        except markit.MarkitError as error:
            say(str(error))
            raise typer.Exit(EXIT_TROUBLE) from None

    return run


@_troubled
@_contained
def diff_cmd(
    old: OldArg,
    new: NewArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object: added, removed, changed (each with"
                                          " its old and new size and SHA-256, and a .safetensors file's tensors),"
                                          " manifest (field: \\[old, new]).")] = False,
    max_size: MaxSize = "1T",
    max_ratio: MaxRatio = 100.0,
    max_entries: MaxEntries = 100_000,
) -> None:
    """Show what changed from archive OLD to archive NEW: entries added (+), removed (-) and changed (~, by size
    and SHA-256), a changed .safetensors file's tensors added, removed or reshaped, and manifest fields. Entry
    times, modes, order, compression, the format and the manifest's createdOn are ignored. Each archive is read
    once; one that verify finds corrupt is refused. Exit 0 the same contents, 1 they differ, 2 usage error or an
    archive that cannot be compared."""
    limits = _limits(max_size, max_ratio, max_entries)
    bar = Progress.for_terminal(0, f"diff {old} {new}", quiet=as_json)
    try:
        result = markit.diff(old, new, limits=limits, progress=bar.update)
    finally:
        bar.close()
    if as_json:
        print(json.dumps(result.to_json(), indent=2, ensure_ascii=True))
    else:
        sys.stdout.writelines(line + "\n" for line in render(result))
    if not result.same():
        raise typer.Exit(1)


def _bytes(n: int) -> str:
    return f"{n:,} byte{'s' * (n != 1)}"


def _value(value: Any, present: bool) -> str:
    return json.dumps(value, ensure_ascii=True) if present else "(none)"


class _Entry(Protocol):
    """What a line shows of an entry (:class:`markit.read.diff.Entry`, which the CLI does not import)."""

    @property
    def size(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def detail(self) -> str: ...


def _entry(entry: _Entry) -> str:
    return _bytes(entry.size) if entry.kind == "file" else f"{entry.kind} -> {shown(entry.detail)}"


_Tensor = tuple[str, tuple[int, ...]]


class _Tensors(Protocol):
    """What a line shows of a safetensors entry's changes (:class:`markit.read.diff.TensorChanges`)."""

    @property
    def added(self) -> Mapping[str, _Tensor]: ...
    @property
    def removed(self) -> Mapping[str, _Tensor]: ...
    @property
    def reshaped(self) -> Mapping[str, tuple[_Tensor, _Tensor]]: ...


def _tensor(tensor: _Tensor) -> str:
    return f"{shown(tensor[0])} [{', '.join(map(str, tensor[1]))}]"


def _tensor_lines(changes: _Tensors) -> Iterator[str]:
    """A safetensors entry's tensors added, removed and reshaped, indented under its line."""
    for mark, tensors in (("+", changes.added), ("-", changes.removed)):
        for name, tensor in tensors.items():
            yield f"    {mark} tensor {shown(name)}  {_tensor(tensor)}"
    for name, (old, new) in changes.reshaped.items():
        yield f"    ~ tensor {shown(name)}  {_tensor(old)} -> {_tensor(new)}"
    if not (changes.added or changes.removed or changes.reshaped):
        yield "    same tensors (names, dtypes, shapes); values differ"


def render(result: markit.Diff) -> Iterator[str]:
    """The lines ``markit diff`` prints."""
    if result.same():
        yield f"same contents: {shown(result.old)} and {shown(result.new)}"
        return
    yield f"--- {shown(result.old)}"
    yield f"+++ {shown(result.new)}"
    names = [*result.added, *result.removed, *(c.name for c in result.changed)]
    width = min(max((len(shown(n)) for n in names), default=0), NAME_WIDTH_MAX)
    for mark, entries in (("+", result.added), ("-", result.removed)):
        for name, entry in entries.items():
            yield f"{mark} {shown(name).ljust(width)}  {_entry(entry)}"
    for change in result.changed:
        old, new = change.old, change.new
        if old.kind == new.kind == "file":
            delta = new.size - old.size
            what = (f"{old.size:,} -> {_bytes(new.size)} ({delta:+,})" if delta else
                    f"{_bytes(new.size)}, SHA-256 {old.sha256[:12] if old.sha256 else ''}"
                    f" -> {new.sha256[:12] if new.sha256 else ''}")
        else:
            what = f"{_entry(old)} -> {_entry(new)}"
        yield f"~ {shown(change.name).ljust(width)}  {what}"
        if change.tensors is not None:
            yield from _tensor_lines(change.tensors)
    for field, (before, after) in result.manifest.items():
        yield f"~ manifest {shown(field)}: {_value(before, before is not None)} -> {_value(after, after is not None)}"
    counts = [f"{len(result.added)} added", f"{len(result.removed)} removed", f"{len(result.changed)} changed"]
    fields = len(result.manifest)
    yield ", ".join(counts) + (f", {fields} manifest field{'s' * (fields != 1)}" if fields else "")
