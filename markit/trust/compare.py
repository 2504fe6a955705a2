"""The pure checks of an archive's entries against a signature: which differ, which are unsigned, which are gone.

Functions of data: the digests the data pass took (by the names ``unpack`` writes) and the
:class:`~markit.trust.oms.Signed` a verified signature lists. Every difference is its own
:class:`~markit.model.problems.Problem`, in archive order, then the signed files the archive lacks.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Protocol

from markit.model.names import normalize
from markit.model.problems import Problem, problem, quote
from markit.read.facts import ArchiveFacts

__all__ = ["SignedFiles", "compare", "entry_digests", "is_ignored"]


class SignedFiles(Protocol):
    """What :func:`compare` needs of a verified signature (:class:`markit.trust.oms.Signed` has it)."""

    @property
    def digests(self) -> Mapping[str, str]:
        """SHA-256 (hex) of each signed file, by name."""

    @property
    def ignore_paths(self) -> tuple[str, ...]:
        """Paths (files or folders) the signer left out on purpose."""


def entry_digests(facts: ArchiveFacts) -> dict[str, str]:
    """SHA-256 (hex) of every file entry the data pass read, by the name ``unpack`` writes it under
    (relative to the archive's root, ``./`` and empty components dropped), in archive order."""
    digests = facts.digests or {}
    return {normalize(m.name): digests[m.name] for m in facts.members if m.kind == "file" and m.name in digests}


def is_ignored(name: str, ignore_paths: Collection[str]) -> bool:
    """Whether *name* is one of *ignore_paths* or lies under one (``.`` is the whole model, as for model_signing)."""
    for path in ignore_paths:
        path = normalize(path)
        if path == "" or name == path or name.startswith(path + "/"):
            return True
    return False


def compare(signed: SignedFiles, entries: Mapping[str, str], *, complete: bool = True,
            skip: Collection[str] = ()) -> list[Problem]:
    """Every way *entries* (SHA-256 by name) differ from what *signed* lists.

    ``signature-mismatch`` for a file whose digest differs, ``unsigned-entry`` for a file the signature does
    not list (unless under its ``ignore_paths``, or in *skip*: the signature file itself inside a folder),
    ``missing-signed-entry`` for a signed file the archive lacks (only when *complete*: a reader that
    stopped early has not seen every entry).
    """
    found = []
    for name, digest in entries.items():
        want = signed.digests.get(name)
        if want is None:
            if name not in skip and not is_ignored(name, signed.ignore_paths):
                found.append(problem("unsigned-entry", name, f"{quote(name)} is not in the signature: anyone could"
                                     " have added or renamed it"))
        elif want != digest:
            found.append(problem("signature-mismatch", name, f"{quote(name)}: SHA-256 is {digest},"
                                 f" the signature says {want}"))
    if complete:
        for name in sorted(signed.digests.keys() - entries.keys()):
            found.append(problem("missing-signed-entry", name, f"{quote(name)} is signed, but the archive has no"
                                 " such file"))
    return found
