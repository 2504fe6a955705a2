"""``inspect``: what an archive holds (:class:`ArchiveInfo`): format, manifest, entries, recorded digests.

A zip file is listed from its central directory and a folder from a walk, reading
only ``MAR-INF/MANIFEST.json`` and ``MAR-INF/RECORD``; a tar or a stream has no
index, so it is read through once, skipping (a file) or discarding (a pipe) the data
of every other member. Nothing is checked here: that is ``verify``'s job.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from markit.errors import ArchiveError
from markit.formats.base import Archive, ArchiveProblem, Member, MemberSink, read_small, relative_members
from markit.formats.detect import open_archive
from markit.model.limits import Limits
from markit.model.record import RECORD_NAME, parse_record
from markit.model.workflow import WAR_RECORD_NAME
from markit.read.facts import kept_cap, kept_name, sort_kept
from markit.weights.names import weight_name

if TYPE_CHECKING:
    from markit.read.weightscan import WeightFacts

__all__ = ["ArchiveInfo", "summarize"]


@dataclass(frozen=True)
class ArchiveInfo:
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
    weights: dict[str, WeightFacts] = field(default_factory=dict)
    """What each weight file says (format, pickle imports, safetensors header), by name."""

    def to_json(self, *, entries: bool = True) -> dict[str, Any]:
        """The object ``inspect --json`` prints (without the entries if not *entries*)."""
        head: dict[str, Any] = {"archive": self.archive, "format": self.format, "root": self.root, "manifest": self.manifest}
        if entries:
            head["entries"] = [self.entry_json(m) for m in self.entries]
        return head

    def entry_json(self, m: Member) -> dict[str, Any]:
        """One entry as ``inspect --json`` prints it."""
        sha256 = self.digests.get(m.name)
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
            **self.weights_json(m.name),
        }

    def weights_json(self, name: str) -> dict[str, Any]:
        """A weight file's ``"weights"`` (format, imports) and, for safetensors, ``"safetensors"``; else nothing."""
        facts = self.weights.get(name)
        if facts is None:
            return {}
        found: dict[str, Any] = {"weights": facts.to_json()}
        if facts.safetensors is not None:
            found["safetensors"] = facts.safetensors.to_json()
        return found


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
    return kept_cap(kept)


def _read_meta(archive: Archive, weights: dict[str, WeightFacts]) -> tuple[list[Member], dict[str, bytes]]:
    """Members (full names) and the MAR-INF bytes, by name relative to the root; each weight file's facts
    go to *weights* (a safetensors header or a pickle read, by name relative to the root)."""
    kept: dict[str, bytes] = {}
    index = archive.index()
    if index is not None:
        for m in index:
            name = kept_name(m.name) if m.kind == "file" else None
            if name == m.name and (data := read_small(archive, m, _cap(name))) is not None:
                kept[name] = data
        if any(m.kind == "file" and weight_name(m.name) for m in index):
            from markit.read.weightscan import read_weights  # ~10 ms of imports, only when there are weights

            weights.update(read_weights(archive, index, None))
        return index, kept

    def keep(m: Member) -> MemberSink | None:
        name = kept_name(m.name) if m.kind == "file" else None
        if name is None and m.kind == "file" and weight_name(m.name):
            from markit.read.weightscan import WeightSink

            return WeightSink(m, weights, m.name)  # the data passes anyway: a stream, or a tar read in order
        return _Keep(_cap(name), kept, m.name) if name is not None else None

    members = archive.scan(keep)
    if archive.root is not None:
        for full in list(weights):
            weights[full.partition("/")[2]] = weights.pop(full)
    relative = {}
    for full, data in kept.items():
        name = full if archive.root is None else full.partition("/")[2]
        if kept_name(name) == name:
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


def _digests(data: bytes | None, record_name: str = RECORD_NAME) -> dict[str, str]:
    try:
        return {row.name: row.sha256 for row in parse_record(data, record_name)} if data is not None else {}
    except ArchiveError:  # a damaged record only means no digests to show; verify reports it
        return {}


def summarize(path: str, *, notice: Callable[[str], None] | None = None,
              on_fetch: Callable[[int], None] | None = None) -> ArchiveInfo:
    """Read what *path* holds; :class:`ArchiveProblem` if its structure cannot be read through. A URL is read
    by range requests (*on_fetch*: the bytes of each); *notice* gets a line to show (a tar.gz read through)."""
    with open_archive(path, Limits(), ranged=True, on_fetch=on_fetch, notice=notice) as archive:
        weights: dict[str, WeightFacts] = {}
        members, kept = _read_meta(archive, weights)
        if not archive.complete:
            raise ArchiveProblem(path, *archive.problems)
        found = sort_kept(kept)  # a model's MAR-INF files, or a workflow's WAR-INF ones
        manifest, state = _manifest(found.manifest)
        record = WAR_RECORD_NAME if found.kind == "workflow" else RECORD_NAME
        return ArchiveInfo(path, archive.format, archive.root, manifest, state,
                       tuple(relative_members(members, archive.root)), _digests(found.record, record), weights)


