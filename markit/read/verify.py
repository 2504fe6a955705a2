"""``verify``: read an archive once and report every problem it has.

The pipeline is ``open_archive -> structure checks -> data pass -> pure checks``:
the reader's own findings (damaged or disagreeing headers, overlaps, data longer
than declared), then the data pass's (CRC-32), then :func:`markit.read.checks.check_archive`
over the members, manifest, record and digests. ``unpack`` runs the same reading with
a writer attached (:func:`read_archive`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from markit.engine.datapass import counter
from markit.errors import ArchiveError
from markit.formats.base import Archive, ArchiveProblem, Member, read_small, relative_members
from markit.formats.detect import open_archive
from markit.model.limits import Limits
from markit.model.problems import ERROR, Problem, problem
from markit.model.record import RECORD_NAME
from markit.model.workflow import WAR_RECORD_NAME
from markit.read.checks import Before, check_archive, check_before
from markit.read.datacheck import DataCheck, Writer
from markit.read.facts import ArchiveFacts, kept_cap, kept_name, sort_kept
from markit.read.weightscan import weight_problems

__all__ = ["Reading", "Report", "facts_from", "read_archive", "verify_path"]

_V = TypeVar("_V")


@dataclass(frozen=True)
class Report:
    """What ``verify`` found in one archive."""

    archive: str
    """The archive as named on the command line."""
    problems: tuple[Problem, ...]
    """Every problem, errors and warnings, in the order found."""

    def ok(self, *, strict: bool = False) -> bool:
        """No error (with *strict*, no problem at all)."""
        return not any(strict or p.severity == ERROR for p in self.problems)

    def to_json(self, *, strict: bool = False) -> dict[str, Any]:
        """The object ``verify --json`` prints."""
        return {"archive": self.archive, "ok": self.ok(strict=strict),
                "problems": [p.to_json() for p in self.problems]}

    def lines(self) -> list[str]:
        """One line per problem: ``archive: severity code: message``."""
        return [f"{self.archive}: {p.severity} {p.code}: {p.message}" for p in self.problems]


@dataclass(frozen=True)
class Reading:
    """What reading an archive through found."""

    facts: ArchiveFacts
    """Members (relative to the root), manifest and record bytes, digests."""
    manifest: dict[str, Any] | None
    """The manifest, if it parsed as a JSON object."""
    problems: tuple[Problem, ...]
    """Everything found, in order: reader, data pass, checks."""
    written: bool
    """Whether the data pass ran (False when a writer was refused before it)."""
    members: tuple[Member, ...] = ()
    """The members as read (names as in the archive, modes as finally known)."""


def _relative_name(name: str, root: str | None) -> str:
    return name if root is None else name.partition("/")[2]


def _relative_keys(found: dict[str, _V], root: str | None) -> dict[str, _V]:
    return found if root is None else {_relative_name(k, root): v for k, v in found.items()}


def facts_from(archive: Archive, members: Sequence[Member], data: DataCheck | None) -> ArchiveFacts:
    """The facts the pure checks take, named relative to the archive's root."""
    root = archive.root
    kept = sort_kept({} if data is None else _relative_keys(data.captured, root))
    return ArchiveFacts(
        label=archive.label, format=archive.format, root=root,
        members=relative_members(members, root), kind=kept.kind, workflow_files=kept.workflow_files,
        manifest=kept.manifest, record=kept.record,
        digests=None if data is None else _relative_keys(data.digests, root),
        sizes=None if data is None else _relative_keys(data.sizes, root),
        stream_size=archive.stream_size, complete=archive.complete,
        weights=None if data is None else _relative_keys(data.weights, root),
    )


def _preflight(archive: Archive, index: list[Member], limits: Limits) -> tuple[list[Problem], Before]:
    """Problems an indexed archive shows before any data is read (so ``unpack`` can refuse early), and what
    of the checks the data cannot change."""
    archive.check_structure()
    captured = DataCheck(sha=False)
    for member in index:
        kept = kept_name(member.name) if member.kind == "file" else None
        if kept == member.name:
            content = read_small(archive, member, kept_cap(kept))
            if content is not None:
                captured.captured[member.name] = content
    facts = replace(facts_from(archive, index, captured), digests=None, sizes=None, workflow_files=None)
    before = check_before(facts)
    return list(archive.problems) + check_archive(facts, limits, before)[1], before


def read_archive(archive: Archive, limits: Limits, writer: Writer | None = None,
                 progress: Callable[[int, int], None] | None = None, *, sha: bool = False) -> Reading:
    """Read *archive* through once, checking everything; with *writer*, every member is also written.

    With a writer, an indexed archive (zip file, folder) with an error visible
    before its data is read is refused before anything is written. *progress* is called with
    (file bytes passed, bytes the index declares; 0 when there is no index: a stream or a tar).
    With *sha*, every file's SHA-256 is taken (else only when a record may exist to check it against).
    """
    index, before = archive.index(), None
    if index is not None and writer is not None:
        early, before = _preflight(archive, index, limits)
        if any(p.severity == ERROR for p in early) or not archive.complete:
            return Reading(facts_from(archive, index, None), None, tuple(early), False)
    sha = sha or index is None or any(kept_name(m.name) in (RECORD_NAME, WAR_RECORD_NAME) for m in index)
    total = sum(m.size or 0 for m in index if m.kind == "file") if index is not None else 0
    with DataCheck(sha=sha, writer=writer, progress=counter(progress, total)) as data:
        members = archive.scan(data.open) if archive.complete else (index or [])
    facts = facts_from(archive, members, data)
    manifest, found = check_archive(facts, limits, before)
    weights = weight_problems(data.weights, archive.root)
    return Reading(facts, manifest, (*archive.problems, *data.problems, *weights, *found), True, tuple(members))


def verify_path(path: str, limits: Limits, progress: Callable[[int, int], None] | None = None, *, sha: bool = False,
                check: Callable[[Reading], Sequence[Problem]] | None = None) -> Report:
    """Verify the archive at *path* (``-``: stdin); every problem is in the report, nothing is raised.

    *sha* takes every file's SHA-256; *check* adds its problems about the reading (a signature's, from
    :mod:`markit.trust`, which this layer does not import) after the archive's own.
    """
    try:
        with open_archive(path, limits) as archive:
            reading = read_archive(archive, limits, progress=progress, sha=sha)
            if check is not None:
                reading = replace(reading, problems=(*reading.problems, *check(reading)))
    except ArchiveProblem as error:
        return Report(path, error.problems)
    except ArchiveError as error:
        return Report(path, (problem("corrupt", None, str(error).removeprefix(f"{path}: ")),))
    except OSError as error:
        return Report(path, (problem("corrupt", None, f"cannot read it ({error.strerror or error})"),))
    return Report(path, reading.problems)
