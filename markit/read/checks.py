"""Every check over an archive's facts, run together: :func:`check_archive` returns all the problems at once.

The checks themselves are in :mod:`markit.read.entries` (names, kinds, duplicates,
sizes) and :mod:`markit.read.contents` (manifest, record, TorchServe's needs).
"""

from __future__ import annotations

from typing import Any

from markit.model.limits import Limits
from markit.model.problems import Problem
from markit.read.contents import check_manifest, check_record, check_torchserve
from markit.read.entries import check_duplicates, check_kinds, check_limits, check_paths, excluded_problems
from markit.read.facts import ArchiveFacts

__all__ = ["check_archive"]


def check_archive(facts: ArchiveFacts, limits: Limits) -> tuple[dict[str, Any] | None, list[Problem]]:
    """Every check over *facts*: the parsed manifest (or None) and all the problems found."""
    members = facts.members
    found = check_paths(members) + check_kinds(members) + check_duplicates(members)
    found += check_limits(facts, limits)
    found += excluded_problems(members)
    if not facts.complete:
        return None, found
    manifest, manifest_problems = check_manifest(facts.manifest, (m.name for m in members if m.kind == "file"))
    found += manifest_problems
    found += check_record(facts)
    found += check_torchserve(facts, manifest)
    return manifest, found

