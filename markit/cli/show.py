"""How ``markit inspect`` prints an archive: a readable table, or JSON written entry by entry.

Every name and value from the archive is escaped, so none can drive a terminal: in the table
by :func:`shown` (``\\x0b``, ``\\x85``, ``\\u2028``), in JSON by ``ensure_ascii`` (``\\u000b``,
``\\u0085``, ``\\u2028``: JSON itself escapes only characters below U+0020).
"""

from __future__ import annotations

import itertools
import json
import stat
import textwrap
from collections.abc import Iterator
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from markit import ArchiveInfo

__all__ = ["render", "shown", "weight_lines", "write_json", "write_table"]


def shown(name: str) -> str:
    """*name* as printed: as is if every character is printable, else quoted with every other one escaped.

    ``str.isprintable`` is False for C0 and C1 controls, U+2028/U+2029, bidirectional overrides and
    lone surrogates, and ``repr`` escapes exactly those.
    """
    return name if name.isprintable() else repr(name)


def _size(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def _head(info: ArchiveInfo) -> list[str]:
    model = info.manifest.get("model") if info.manifest else None
    model = model if isinstance(model, dict) else {}
    total = sum(m.size or 0 for m in info.entries)
    lines = [f"archive   {shown(info.archive)} ({info.format}, {len(info.entries)} entries, {total:,} bytes)"]
    if info.root is not None:
        lines.append(f"root      {shown(info.root)}/")
    if info.manifest_state != "ok":
        lines.append(f"manifest  {info.manifest_state}")
    top = info.manifest or {}
    flow = top.get("workflow")  # a .war's manifest
    flow = flow if isinstance(flow, dict) else {}
    for label, value in (("model", model.get("modelName")), ("workflow", flow.get("workflowName")),
                         ("spec", flow.get("specFile")), ("version", model.get("modelVersion")),
                         ("handler", model.get("handler") or flow.get("handler")), ("runtime", top.get("runtime")),
                         ("weights", model.get("serializedFile")), ("created", top.get("createdOn")),
                         ("archiver", top.get("archiverVersion"))):
        if value is not None:
            lines.append(f"{label:<9} {shown(str(value))}")
    return lines


_TITLES = ("size", "stored", "method", "crc32", "mode", "sha256", "name")
_BATCH = 4096  # table lines per write: one write per ~300 KiB rather than one per line


def _widths(info: ArchiveInfo) -> list[int]:
    """Each column's width but the last, from the largest value in it (a longer number is a larger one)."""
    entries, digests = info.entries, info.digests
    sizes = [max((n for n in column if n is not None), default=0) for column in
             ((m.size for m in entries), (m.compressed_size for m in entries))]
    cells = [
        *(len(_size(n)) for n in sizes),
        max((len(method or "-") for method in {m.method for m in entries}), default=0),
        max((len(_mode(mode)) for mode in {m.mode for m in entries}), default=0),
    ]
    crc = 8 if any(m.crc is not None for m in entries) else 1
    sha = max((min(len(d), 12) if (d := digests.get(m.name)) else 1 for m in entries), default=1) if digests else 1
    return [max(len(title), cell) for title, cell in zip(_TITLES, (*cells[:3], crc, cells[3], sha))]


def _mode(mode: int | None) -> str:
    return "-" if mode is None else f"{stat.S_IMODE(mode):o}"


def render(info: ArchiveInfo) -> Iterator[str]:
    """The readable summary, line by line: a few lines about the model, then a table of entries.

    One pass over the entries after a pass for the widths (from the largest values, not from the
    formatted cells), so no table is held in memory. Cells that repeat (sizes, methods, modes) are
    formatted once each.
    """
    yield from _head(info)
    yield ""
    w = _widths(info)
    yield "  ".join([_TITLES[0].rjust(w[0]), _TITLES[1].rjust(w[1]), *(t.ljust(n) for t, n in zip(_TITLES[2:6], w[2:])),
                     _TITLES[6]])
    digests: dict[str, str] = info.digests
    sizes: dict[int | None, str] = {}  # each distinct size, formatted and padded once
    stored: dict[int | None, str] = {}
    methods = {method: (method or "-").ljust(w[2]) for method in {m.method for m in info.entries}}
    modes = {mode: _mode(mode).ljust(w[4]) for mode in {m.mode for m in info.entries}}
    no_crc, no_sha = "-".ljust(w[3]), "-".ljust(w[5])
    for m in info.entries:
        size = sizes.get(m.size) or sizes.setdefault(m.size, _size(m.size).rjust(w[0]))
        packed = stored.get(m.compressed_size) or stored.setdefault(m.compressed_size,
                                                                    _size(m.compressed_size).rjust(w[1]))
        sha = digests.get(m.name)
        name = m.name if m.name.isprintable() else repr(m.name)
        if m.kind != "file" and m.kind != "dir":
            name += f" [{m.kind}]" + (f" -> {shown(m.detail)}" if m.kind in ("symlink", "hardlink") else "")
        yield (f"{size}  {packed}  {methods[m.method]}  {no_crc if m.crc is None else f'{m.crc:08x}'.ljust(w[3])}"
               f"  {modes[m.mode]}  {sha[:12].ljust(w[5]) if sha else no_sha}  {name}")
    yield from weight_lines(info)


def weight_lines(info: ArchiveInfo) -> Iterator[str]:
    """The weight files: each one's format and what its pickles import, or its safetensors header."""
    if not info.weights:
        return
    yield ""
    yield "weights"
    for name, facts in info.weights.items():
        yield f"  {shown(name)}  {facts.format}"
        header = facts.safetensors
        if header is not None:
            dtypes = ", ".join(f"{dtype} x{count:,}" for dtype, count in header.dtypes.items())
            yield f"    {len(header.tensors):,} tensors, {header.parameters:,} parameters ({dtypes or 'none'})"
            if header.metadata:
                yield f"    metadata {shown(json.dumps(header.metadata, ensure_ascii=False))}"
        if facts.imports:
            yield f"    imports {shown(', '.join(facts.imports))}"
        elif facts.format in ("pickle", "torch-zip", "torchscript"):
            yield "    imports nothing"
        if facts.refused:
            yield f"    refused by torch.load(weights_only=True): {shown(', '.join(facts.refused))}"
        if facts.note:
            yield f"    {facts.note}"


def write_table(info: ArchiveInfo, out: TextIO) -> None:
    """:func:`render` written to *out*, a few thousand lines per write."""
    lines = render(info)
    while batch := list(itertools.islice(lines, _BATCH)):
        out.write("\n".join(batch) + "\n")


def write_json(info: ArchiveInfo, out: TextIO) -> None:
    """:meth:`Summary.to_json` as text, written entry by entry (an archive may hold thousands)."""
    head = info.to_json(entries=False)
    out.write("{\n")
    for key, value in head.items():
        shown_value = textwrap.indent(json.dumps(value, indent=2, ensure_ascii=True), "  ").lstrip()
        out.write(f"  {json.dumps(key, ensure_ascii=True)}: {shown_value},\n")
    out.write('  "entries": [')
    out.writelines(("\n    " if i == 0 else ",\n    ") + json.dumps(info.entry_json(m), ensure_ascii=True)
                   for i, m in enumerate(info.entries))  # one entry at a time: no list of them all
    out.write("\n  ]\n}\n" if info.entries else "]\n}\n")

