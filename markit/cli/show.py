"""How ``markit inspect`` prints an archive: a readable table, or JSON written entry by entry.

Every name and value from the archive is escaped, so none can drive a terminal: in the table
by :func:`shown` (``\\x0b``, ``\\x85``, ``\\u2028``), in JSON by ``ensure_ascii`` (``\\u000b``,
``\\u0085``, ``\\u2028``: JSON itself escapes only characters below U+0020).
"""

from __future__ import annotations

import json
import stat
import textwrap
from collections.abc import Iterator
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from markit import ArchiveInfo, Member

__all__ = ["render", "shown", "write_json"]


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
    for label, value in (("model", model.get("modelName")), ("version", model.get("modelVersion")),
                         ("handler", model.get("handler")), ("runtime", top.get("runtime")),
                         ("weights", model.get("serializedFile")), ("created", top.get("createdOn")),
                         ("archiver", top.get("archiverVersion"))):
        if value is not None:
            lines.append(f"{label:<9} {shown(str(value))}")
    return lines


def _row(m: Member, sha: str | None) -> tuple[str, ...]:
    link = f" -> {shown(m.detail)}" if m.kind in ("symlink", "hardlink") else ""
    kind = "" if m.kind in ("file", "dir") else f" [{m.kind}]"
    crc = "-" if m.crc is None else f"{m.crc:08x}"
    mode = "-" if m.mode is None else f"{stat.S_IMODE(m.mode):o}"
    return (_size(m.size), _size(m.compressed_size), m.method or "-", crc, mode, sha[:12] if sha else "-",
            shown(m.name) + kind + link)


_TITLES = ("size", "stored", "method", "crc32", "mode", "sha256", "name")


def render(info: ArchiveInfo) -> Iterator[str]:
    """The readable summary, line by line: a few lines about the model, then a table of entries.

    Two passes over the entries (widths, then rows), so no table is held in memory.
    """
    yield from _head(info)
    yield ""
    widths = [len(title) for title in _TITLES[:6]]
    for m in info.entries:
        widths = [max(w, len(cell)) for w, cell in zip(widths, _row(m, info.digests.get(m.name)))]
    for row in (_TITLES, *(_row(m, info.digests.get(m.name)) for m in info.entries)):
        cells = [row[0].rjust(widths[0]), row[1].rjust(widths[1])] + [row[i].ljust(widths[i]) for i in range(2, 6)]
        yield "  ".join([*cells, row[6]])


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

