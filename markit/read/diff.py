"""``diff``: what differs between two archives' contents (:class:`Diff`), from two readings' facts.

Each archive is read once, as ``verify`` reads it, with every file's SHA-256 taken
(:func:`read_contents`, the one function here that touches an archive); the comparison
itself (:func:`contents_of`, :func:`compare`) is pure. Contents are what TorchServe would
see: files by name (relative to a tar's top folder), size and SHA-256; links by target;
the manifest (``MAR-INF/MANIFEST.json``, a workflow's ``WAR-INF/MANIFEST.json``) by field. Entry
times, modes, order, compression and the archive's format are not contents, nor is the manifest's
``createdOn``. The record (``MAR-INF/RECORD``, ``WAR-INF/RECORD``) counts only by its presence: the
reading checked it against the data, so its rows say nothing the entries do not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from markit.errors import ArchiveError
from markit.formats.base import ArchiveProblem
from markit.formats.detect import open_archive
from markit.model.limits import Limits
from markit.model.manifest import MANIFEST_NAME
from markit.model.problems import Problem, quote
from markit.model.record import RECORD_NAME
from markit.model.workflow import WAR_MANIFEST_NAME, WAR_RECORD_NAME
from markit.read.verify import Reading, read_archive

__all__ = ["TIMESTAMPS", "UNREADABLE", "Change", "Contents", "Diff", "Entry", "Tensor", "TensorChanges",
           "Uncomparable", "compare", "contents_of", "diff_paths", "manifest_fields", "read_contents"]

TIMESTAMPS = frozenset({"createdOn"})  # manifest fields that say when an archive was made, not what it holds
Tensor = tuple[str, tuple[int, ...]]
"""A tensor as a safetensors header declares it: its dtype (``F32``, ``BF16``...) and shape."""
# verify's codes after which the facts read are not the archive's contents (or not all of them): such an
# archive is refused, not compared. Others (a missing manifest, an unsafe name, a link) are compared as found.
UNREADABLE = frozenset({"not-an-archive", "corrupt", "crc-mismatch", "digest-mismatch", "record-mismatch",
                        "duplicate-entry", "bomb"})
_NAMES = {"model": (MANIFEST_NAME, RECORD_NAME), "workflow": (WAR_MANIFEST_NAME, WAR_RECORD_NAME)}
"""Each kind of archive's manifest and record (the one the reading checks)."""


@dataclass(frozen=True)
class Entry:
    """One entry's contents."""

    size: int
    """Bytes of a file's data as read (0 for a link or special entry)."""
    sha256: str | None
    """The SHA-256 (hex) of a file's data as read; None for other kinds."""
    kind: str = "file"
    """``file``, ``symlink``, ``hardlink`` or ``special``."""
    detail: str = ""
    """A link's target, or what a special entry is."""

    def to_json(self) -> dict[str, Any]:
        """``{"size", "sha256"}``, with ``type`` and ``link`` for an entry that is not a file."""
        shown: dict[str, Any] = {"size": self.size, "sha256": self.sha256}
        if self.kind != "file":
            shown |= {"type": self.kind, "link": self.detail}
        return shown


@dataclass(frozen=True)
class Contents:
    """What :func:`compare` compares of one archive."""

    label: str
    """The archive as named (``-`` for stdin)."""
    entries: Mapping[str, Entry]
    """Entries by name, relative to the archive's root; folders left out (a zip need not list them)."""
    manifest: Mapping[str, Any] | None = None
    """The manifest parsed, if it is a JSON object (then it is not among :attr:`entries`)."""
    kind: str = "model"
    """``model`` (its manifest and record in ``MAR-INF/``) or ``workflow`` (in ``WAR-INF/``)."""
    tensors: Mapping[str, Mapping[str, Tensor]] = field(default_factory=dict)
    """For each ``.safetensors`` entry whose header is valid: its tensors by name."""


@dataclass(frozen=True)
class TensorChanges:
    """How a safetensors entry's tensors changed (values are not compared: the entry's SHA-256 covers them)."""

    added: Mapping[str, Tensor] = field(default_factory=dict)
    removed: Mapping[str, Tensor] = field(default_factory=dict)
    reshaped: Mapping[str, tuple[Tensor, Tensor]] = field(default_factory=dict)
    """Tensors both hold, whose dtype or shape differs: (old, new)."""

    def to_json(self) -> dict[str, Any]:
        """``{"added": [names], "removed": [names], "reshaped": [{"name", "old": {"dtype", "shape"}, "new"}]}``."""
        return {"added": list(self.added), "removed": list(self.removed),
                "reshaped": [{"name": name, "old": _tensor_json(old), "new": _tensor_json(new)}
                             for name, (old, new) in self.reshaped.items()]}


def _tensor_json(tensor: Tensor) -> dict[str, Any]:
    return {"dtype": tensor[0], "shape": list(tensor[1])}


@dataclass(frozen=True)
class Change:
    """An entry both archives hold, with different contents."""

    name: str
    old: Entry
    new: Entry
    tensors: TensorChanges | None = None
    """For a safetensors entry whose headers are valid on both sides."""

    def to_json(self) -> dict[str, Any]:
        """``{"name", "old": {"size", "sha256"}, "new": {...}}``, and ``"tensors"`` for a safetensors entry."""
        shown = {"name": self.name, "old": self.old.to_json(), "new": self.new.to_json()}
        return shown if self.tensors is None else {**shown, "tensors": self.tensors.to_json()}


@dataclass(frozen=True)
class Diff:
    """What differs from the archive :attr:`old` to the archive :attr:`new`; every part sorted by name."""

    old: str
    """The first archive as named."""
    new: str
    """The second archive as named."""
    added: Mapping[str, Entry] = field(default_factory=dict)
    """Entries only *new* holds."""
    removed: Mapping[str, Entry] = field(default_factory=dict)
    """Entries only *old* holds."""
    changed: tuple[Change, ...] = ()
    """Entries both hold, whose size, SHA-256 or kind differ."""
    manifest: Mapping[str, tuple[Any, Any]] = field(default_factory=dict)
    """Manifest fields (nested ones dotted: ``model.modelVersion``) whose values differ: (old, new), None for
    a field one side lacks."""

    def same(self) -> bool:
        """Whether the two archives hold the same contents."""
        return not (self.added or self.removed or self.changed or self.manifest)

    def to_json(self) -> dict[str, Any]:
        """What ``diff --json`` prints."""
        return {"old": self.old, "new": self.new, "same": self.same(), "added": list(self.added),
                "removed": list(self.removed), "changed": [c.to_json() for c in self.changed],
                "manifest": {name: list(values) for name, values in self.manifest.items()}}


def manifest_fields(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """*manifest*'s fields, a nested object's as ``outer.inner`` (a non-empty one; an empty one is a value),
    without :data:`TIMESTAMPS`. A field named with a dot and a nested one can collide: the later wins."""
    flat: dict[str, Any] = {}
    todo: list[tuple[str, Mapping[str, Any]]] = [("", manifest)]
    while todo:  # no recursion: a manifest may nest as deep as its bytes allow
        prefix, obj = todo.pop()
        for key, value in obj.items():
            if isinstance(value, dict) and value:
                todo.append((f"{prefix}{key}.", value))
            elif f"{prefix}{key}" not in TIMESTAMPS:
                flat[f"{prefix}{key}"] = value
    return dict(sorted(flat.items()))


def _entries(contents: Contents, other: Contents) -> dict[str, Entry]:
    """*contents*' entries as compared: the manifest apart when both sides' parsed."""
    manifest = _NAMES[contents.kind][0] if contents.manifest is not None and other.manifest is not None else None
    return {name: e for name, e in contents.entries.items() if name != manifest}


def _manifest_changes(old: Contents, new: Contents) -> dict[str, tuple[Any, Any]]:
    """Fields whose values differ; none when a side's manifest is there but is not a JSON object (then its
    bytes are compared as an entry)."""
    unparsed = any(c.manifest is None and _NAMES[c.kind][0] in c.entries for c in (old, new))
    if unparsed:
        return {}
    before = manifest_fields(old.manifest or {})
    after = manifest_fields(new.manifest or {})
    names = sorted(before.keys() | after.keys())
    return {n: (before.get(n), after.get(n)) for n in names if _differ(before.get(n), after.get(n), n in before,
                                                                          n in after)}


def _differ(a: Any, b: Any, in_a: bool, in_b: bool) -> bool:
    return in_a != in_b or type(a) is not type(b) or a != b  # 1 and 1.0, or true and 1, are different JSON


def _tensor_changes(old: Mapping[str, Tensor] | None, new: Mapping[str, Tensor] | None) -> TensorChanges | None:
    if old is None or new is None:
        return None
    return TensorChanges({n: new[n] for n in sorted(new.keys() - old.keys())},
                         {n: old[n] for n in sorted(old.keys() - new.keys())},
                         {n: (old[n], new[n]) for n in sorted(old.keys() & new.keys()) if old[n] != new[n]})


def compare(old: Contents, new: Contents) -> Diff:
    """What differs from *old* to *new*."""
    before, after = _entries(old, new), _entries(new, old)
    added = {n: after[n] for n in sorted(after.keys() - before.keys())}
    removed = {n: before[n] for n in sorted(before.keys() - after.keys())}
    record = _NAMES[old.kind][1] if old.kind == new.kind else None  # checked on both sides: its presence counts
    changed = tuple(Change(n, before[n], after[n], _tensor_changes(old.tensors.get(n), new.tensors.get(n)))
                    for n in sorted(before.keys() & after.keys()) if before[n] != after[n] and n != record)
    return Diff(old.label, new.label, added, removed, changed, _manifest_changes(old, new))


class Uncomparable(ArchiveProblem):
    """An archive ``diff`` will not compare: what was read of it is not its contents (:data:`UNREADABLE`).
    Its message is one line: the first such problem, and how many more there are."""

    def __init__(self, label: str, *found: Problem) -> None:
        super().__init__(label, *found)
        more = len(found) - 1
        self.args = (f"{label}: {found[0].code}: {found[0].message}"
                     + (f" (and {more} more problem{'s' * (more > 1)}: markit verify lists them)" if more else ""),)


def contents_of(reading: Reading) -> Contents:
    """The contents a reading found; :class:`Uncomparable` if it found a problem of :data:`UNREADABLE`."""
    facts = reading.facts
    bad = [p for p in reading.problems if p.code in UNREADABLE]
    if bad:
        raise Uncomparable(facts.label, *bad)
    digests, sizes = facts.digests or {}, facts.sizes or {}
    entries: dict[str, Entry] = {}
    for m in facts.members:
        if m.kind == "file" and (m.name not in digests or m.name not in sizes or not facts.complete):
            raise ArchiveError(f"{facts.label}: entry {quote(m.name)} could not be read through")
        if m.kind == "file":
            entries[m.name] = Entry(sizes[m.name], digests[m.name])
        elif m.kind != "dir":
            entries[m.name] = Entry(0, None, m.kind, m.detail)
    manifest = reading.manifest if _NAMES[facts.kind][0] in entries else None
    tensors = {name: {t.name: (t.dtype, t.shape) for t in weights.safetensors.tensors}
               for name, weights in (facts.weights or {}).items() if weights.safetensors is not None}
    return Contents(facts.label, entries, manifest, facts.kind, tensors)


def read_contents(path: str, limits: Limits, progress: Callable[[int, int], None] | None = None) -> Contents:
    """Read the archive at *path* (``-``: stdin) once, hashing every file, and take its contents.

    :class:`~markit.errors.ArchiveError` if it cannot be read, or if what was read is not to be trusted
    (:data:`UNREADABLE`). *progress* as for :func:`~markit.read.verify.read_archive`.
    """
    with open_archive(path, limits) as archive:
        return contents_of(read_archive(archive, limits, progress=progress, sha=True))


def diff_paths(old: str, new: str, limits: Limits, progress: Callable[[int, int], None] | None = None) -> Diff:
    """:func:`compare` of the archives at *old* and *new*, read one after the other. *progress* is called with
    (bytes checked of both, bytes declared so far: *old*'s index, then what *old* held and *new*'s index; 0 while
    an archive without an index, a stream or a tar, is read)."""
    first_done = 0

    def first(done: int, total: int) -> None:
        nonlocal first_done
        first_done = done
        if progress is not None:
            progress(done, total)

    def second(done: int, total: int) -> None:
        if progress is not None:
            progress(first_done + done, first_done + total if total else 0)

    return compare(read_contents(old, limits, first), read_contents(new, limits, second))
