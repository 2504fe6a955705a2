"""Every check over an archive's facts, run together: :func:`check_archive` returns all the problems at once.

The checks themselves are in :mod:`markit.read.entries` (names, kinds, duplicates,
sizes), :mod:`markit.read.contents` (manifest, record, TorchServe's needs) and
:mod:`markit.read.workflow` (a workflow archive's manifest and spec).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from markit.model.limits import Limits
from markit.model.problems import Problem
from markit.model.record import RecordRow
from markit.read.contents import check_manifest, check_record, check_torchserve, record_name_of, record_rows
from markit.read.entries import EntryFindings, check_entries, check_limits
from markit.read.facts import ArchiveFacts, MemberFacts
from markit.read.workflow import check_workflow, check_workflow_torchserve

__all__ = ["Before", "check_archive", "check_before"]


@dataclass(frozen=True)
class Before:
    """What :func:`check_archive` works out that reading the data cannot change: ``unpack`` checks an
    archive before it writes (without digests) and again after, and the second time reuses this."""

    members: Sequence[MemberFacts]
    """The members it was worked out for."""
    entries: EntryFindings
    """The name and kind checks' findings."""
    record: bytes | None
    """The record's bytes, and its rows (or why they cannot be read)."""
    rows: list[RecordRow] | Problem | None


def check_before(facts: ArchiveFacts) -> Before:
    """The part of the checks that depends on the members and the record's bytes only."""
    rows = record_rows(facts.record, record_name_of(facts)) if facts.record is not None and facts.complete else None
    return Before(facts.members, check_entries(facts.members), facts.record, rows)


def check_archive(facts: ArchiveFacts, limits: Limits, before: Before | None = None
                  ) -> tuple[dict[str, Any] | None, list[Problem]]:
    """Every check over *facts*: the parsed manifest (or None) and all the problems found.

    *before*, from :func:`check_before` over the same members (each the same object) and the same record
    bytes, spares working those out again; anything else in it is ignored.
    """
    members = facts.members
    same = before is not None and len(before.members) == len(members) and all(
        a is b for a, b in zip(before.members, members))
    entries = before.entries if before is not None and same else check_entries(members)
    found = entries.paths + entries.kinds + entries.duplicates
    found += check_limits(facts, limits)
    found += entries.excluded
    if not facts.complete:
        return None, found
    if facts.kind == "workflow":
        manifest, manifest_problems = check_workflow(facts)
    else:
        manifest, manifest_problems = check_manifest(facts.manifest, (m.name for m in members if m.kind == "file"))
    found += manifest_problems
    rows = before.rows if before is not None and facts.record is not None and before.record == facts.record else None
    found += check_record(facts, rows)
    found += check_workflow_torchserve(facts) if facts.kind == "workflow" else check_torchserve(facts, manifest)
    return manifest, found
