"""``inspect``: what an archive holds, as a readable table or one JSON object.

A zip file is listed from its central directory and a folder from a walk, reading
only ``MAR-INF/MANIFEST.json`` and ``MAR-INF/RECORD``; a tar or a stream has no
index, so it is read through once, skipping (a file) or discarding (a pipe) the data
of every other member. Nothing is checked here: that is ``verify``'s job.
"""

from __future__ import annotations

import json
import stat
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from markit.archive import Archive, ArchiveProblem, Member, MemberSink, open_archive, read_small, relative_members
from markit.checks import MANIFEST_MAX, RECORD_MAX, Limits, captured_name
from markit.manifest import MANIFEST_NAME
from markit.record import RECORD_NAME, parse_record

__all__ = ["Summary", "render", "shown", "summarize", "write_json"]


@dataclass(frozen=True)
class Summary:
    """An archive's format, manifest and entries."""

    archive: str
    """The archive as named."""
    format: str
    """``zip``, ``tar``, ``tar.gz`` or ``directory``."""
    root: str | None
    """A tar's top folder, or None."""
    manifest: dict[str, Any] | None
    """``MAR-INF/MANIFEST.json`` as parsed, if it is a JSON object."""
    manifest_state: str
    """``ok``, ``missing`` or why it did not parse."""
    entries: tuple[Member, ...]
    """Members, named relative to the root, in archive order."""
    digests: dict[str, str]
    """SHA-256 by name, as ``MAR-INF/RECORD`` lists them (empty without a record)."""

    def to_json(self, *, entries: bool = True) -> dict[str, Any]:
        """The object ``inspect --json`` prints (without the entries if not *entries*)."""
        head: dict[str, Any] = {"format": self.format, "root": self.root, "manifest": self.manifest}
        if entries:
            head["entries"] = [_entry_json(m, self.digests.get(m.name)) for m in self.entries]
        return head


def _entry_json(m: Member, sha256: str | None) -> dict[str, Any]:
    return {
        "name": m.name,
        "type": m.kind,
        "size": m.size,
        "compressed_size": m.compressed_size,
        "method": m.method,
        "crc32": None if m.crc is None else f"{m.crc:08x}",
        "mode": None if m.mode is None else f"{stat.S_IMODE(m.mode):o}",
        "sha256": sha256,
        "link": m.detail if m.kind in ("symlink", "hardlink") else None,
    }


class _Keep:
    """Keeps a MAR-INF member's bytes during a scan."""

    def __init__(self, cap: int, into: dict[str, bytes], name: str) -> None:
        self.cap, self.into, self.name = cap, into, name
        self.data = bytearray()

    def write(self, chunk: bytes | memoryview) -> None:
        self.data += chunk[: self.cap - len(self.data)]

    def done(self, member: Member, complete: bool) -> None:
        if complete:
            self.into[self.name] = bytes(self.data)


def _cap(kept: str) -> int:
    return (MANIFEST_MAX if kept == MANIFEST_NAME else RECORD_MAX) + 1


def _read_meta(archive: Archive) -> tuple[list[Member], dict[str, bytes]]:
    """Members (full names) and the MAR-INF bytes, by name relative to the root."""
    kept: dict[str, bytes] = {}
    index = archive.index()
    if index is not None:
        for m in index:
            name = captured_name(m.name) if m.kind == "file" else None
            if name == m.name and (data := read_small(archive, m, _cap(name))) is not None:
                kept[name] = data
        return index, kept

    def keep(m: Member) -> MemberSink | None:
        name = captured_name(m.name) if m.kind == "file" else None
        return _Keep(_cap(name), kept, m.name) if name is not None else None

    members = archive.scan(keep)
    relative = {}
    for full, data in kept.items():
        name = full if archive.root is None else full.partition("/")[2]
        if captured_name(name) == name:
            relative[name] = data
    return members, relative


def _manifest(data: bytes | None) -> tuple[dict[str, Any] | None, str]:
    if data is None:
        return None, "missing"
    try:
        parsed = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None, "not valid JSON"
    return (parsed, "ok") if isinstance(parsed, dict) else (None, "not a JSON object")


def _digests(data: bytes | None) -> dict[str, str]:
    try:
        return {row.name: row.sha256 for row in parse_record(data)} if data is not None else {}
    except Exception:  # noqa: BLE001 - a damaged record only means no digests to show; verify reports it
        return {}


def summarize(path: str) -> Summary:
    """Read what *path* holds; :class:`ArchiveProblem` if its structure cannot be read through."""
    with open_archive(path, Limits()) as archive:
        members, kept = _read_meta(archive)
        if not archive.complete:
            raise ArchiveProblem(path, *archive.problems)
        manifest, state = _manifest(kept.get(MANIFEST_NAME))
        return Summary(path, archive.format, archive.root, manifest, state,
                       tuple(relative_members(members, archive.root)), _digests(kept.get(RECORD_NAME)))


def shown(name: str) -> str:
    """*name* as printed: as is if printable, else quoted with escapes (a name cannot drive a terminal)."""
    return name if name.isprintable() else repr(name)


def _size(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def _head(summary: Summary) -> list[str]:
    model = summary.manifest.get("model") if summary.manifest else None
    model = model if isinstance(model, dict) else {}
    total = sum(m.size or 0 for m in summary.entries)
    lines = [f"archive   {shown(summary.archive)} ({summary.format}, {len(summary.entries)} entries, {total:,} bytes)"]
    if summary.root is not None:
        lines.append(f"root      {shown(summary.root)}/")
    if summary.manifest_state != "ok":
        lines.append(f"manifest  {summary.manifest_state}")
    top = summary.manifest or {}
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


def render(summary: Summary) -> Iterator[str]:
    """The readable summary, line by line: a few lines about the model, then a table of entries.

    Two passes over the entries (widths, then rows), so no table is held in memory.
    """
    yield from _head(summary)
    yield ""
    widths = [len(title) for title in _TITLES[:6]]
    for m in summary.entries:
        widths = [max(w, len(cell)) for w, cell in zip(widths, _row(m, summary.digests.get(m.name)))]
    for row in (_TITLES, *(_row(m, summary.digests.get(m.name)) for m in summary.entries)):
        cells = [row[0].rjust(widths[0]), row[1].rjust(widths[1])] + [row[i].ljust(widths[i]) for i in range(2, 6)]
        yield "  ".join([*cells, row[6]])


def write_json(summary: Summary, out: TextIO) -> None:
    """:meth:`Summary.to_json` as text, written entry by entry (an archive may hold thousands)."""
    head = summary.to_json(entries=False)
    out.write("{\n")
    for key, value in head.items():
        shown_value = textwrap.indent(json.dumps(value, indent=2), "  ").lstrip()
        out.write(f"  {json.dumps(key)}: {shown_value},\n")
    out.write('  "entries": [')
    out.writelines(("\n    " if i == 0 else ",\n    ") + json.dumps(_entry_json(m, summary.digests.get(m.name)))
                   for i, m in enumerate(summary.entries))  # one entry at a time: no list of them all
    out.write("\n  ]\n}\n" if summary.entries else "]\n}\n")
