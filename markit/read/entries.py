"""Checks of the entries themselves: names, kinds, duplicates, declared sizes and ratios.

Pure functions of member records (:class:`~markit.read.facts.MemberFacts`); each
returns a list of :class:`~markit.model.problems.Problem`, never raises. Each runs in
time linear in the total bytes of the names: a name longer than any filesystem takes
is ``unsafe-path`` (:func:`check_paths`) and every other check skips it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from markit.model.limits import RATIO_FROM, Limits
from markit.model.names import PART_MAX_BYTES, excluded_name, normalize, too_long, unsafe_reason
from markit.model.problems import Problem, problem, quote
from markit.read.facts import ArchiveFacts, MemberFacts

__all__ = [
    "EntryFindings", "check_duplicates", "check_entries", "check_kinds", "check_limits", "check_paths",
    "excluded_problems", "over_ratio", "plain_name",
]


@dataclass
class EntryFindings:
    """The problems of the name and kind checks, each list in member order."""

    paths: list[Problem] = field(default_factory=list)
    """``unsafe-path``: :func:`check_paths`."""
    kinds: list[Problem] = field(default_factory=list)
    """``link-entry``, ``special-entry``: :func:`check_kinds`."""
    duplicates: list[Problem] = field(default_factory=list)
    """``duplicate-entry``: :func:`check_duplicates`."""
    excluded: list[Problem] = field(default_factory=list)
    """``excluded-file``: :func:`excluded_problems`."""


def check_entries(members: Iterable[MemberFacts]) -> EntryFindings:
    """:func:`check_paths`, :func:`check_kinds`, :func:`check_duplicates` and :func:`excluded_problems` in one
    pass: each name is measured and normalised once."""
    found = EntryFindings()
    seen: dict[str, MemberFacts] = {}
    for m in members:
        name, kind = m.name, m.kind
        if plain_name(name):  # safe, in bounds, and its own key
            key = name.removesuffix("/")
        else:
            odd = _odd_name(m, found.paths)
            if odd is None:
                continue
            key = odd
        if kind in _KIND_WORDS:
            target = f" to {quote(m.detail)}" if m.detail else ""
            found.kinds.append(problem("link-entry", name, f"entry {quote(name)}: {_KIND_WORDS[kind]}{target},"
                                       " expected a regular file or folder"))
        elif kind == "special":
            found.kinds.append(problem("special-entry", name, f"entry {quote(name)}: {m.detail or 'a special file'},"
                                       " expected a regular file or folder"))
        first = seen.get(key)
        if first is None:
            seen[key] = m
        elif not (first.kind == kind == "dir"):
            found.duplicates.append(problem("duplicate-entry", name, f"entry {quote(name)}: the same name as entry"
                                            f" {quote(first.name)} once normalised ({quote(key)})"))
        if _CANDIDATE.search(key) and (reason := _excluded_part(key)) is not None:
            found.excluded.append(problem("excluded-file", name, f"entry {quote(name)}: {reason}; markit create"
                                          " leaves such files out"))
    under = _under_files(list(seen), {key for key, m in seen.items() if m.kind != "dir"})
    for key, m in seen.items():
        if key in under:
            parent = seen[under[key]]
            found.duplicates.append(problem("duplicate-entry", m.name, f"entry {quote(m.name)}: its folder"
                                            f" {quote(parent.name)} is also an entry of kind {parent.kind}"))
    return found


# A name made of these characters, components not starting with '.', no '//', at most 255 characters:
# unsafe_reason finds nothing (no '..', '\\', NUL, ':', leading '/', nor length) and normalize leaves it as
# it is but for a trailing '/'. tests/test_checks.py holds this against the functions it stands for.
_PLAIN = re.compile(r"[A-Za-z0-9_+=,@~-][A-Za-z0-9_+=,@~.-]*(?:/[A-Za-z0-9_+=,@~-][A-Za-z0-9_+=,@~.-]*)*/?")


def plain_name(name: str) -> bool:
    """Whether *name* is plain: then ``unsafe_reason(name)`` is None and ``normalize(name)`` is *name* without
    a trailing ``/`` (and not empty), found by one match rather than worked out."""
    return len(name) <= PART_MAX_BYTES and _PLAIN.fullmatch(name) is not None


def _odd_name(m: MemberFacts, paths: list[Problem]) -> str | None:
    """The key of a name that is not plain, once :func:`check_paths`'s verdict on it is in *paths*; None if
    no filesystem can hold it (every other check skips it)."""
    name = m.name
    reason = unsafe_reason(name)
    key = normalize(name) if reason is None else ""
    if reason is None and not key and m.kind != "dir":
        reason = "the name has no file name in it"
    if reason is not None:
        paths.append(problem("unsafe-path", name, f"entry {quote(name)}: {reason}"))
        if too_long(name) is not None:
            return None
        key = normalize(name)
    return key


def check_paths(members: Iterable[MemberFacts]) -> list[Problem]:
    """``unsafe-path`` for names that could land outside the destination."""
    return check_entries(members).paths


_KIND_WORDS = {"symlink": "a symbolic link", "hardlink": "a hard link"}


def check_kinds(members: Iterable[MemberFacts]) -> list[Problem]:
    """``link-entry`` and ``special-entry``: only regular files and folders are allowed."""
    return check_entries(members).kinds


def check_duplicates(members: Iterable[MemberFacts]) -> list[Problem]:
    """``duplicate-entry``: one name twice after normalisation, or a name that is both file and folder."""
    return check_entries(members).duplicates


def _under_files(keys: Sequence[str], files: set[str]) -> dict[str, str]:
    """For each of *keys* (normalised names) inside one of *files*, the shortest such file.

    With ``/`` read as the lowest character (``\\x00``, which no safe name holds), every name
    inside ``a`` sorts right after ``a``; one sorted sweep with the stack of the files whose
    folders it is in finds them all, comparing each name with a few others only.
    """
    inside: list[str] = []  # the files the sweep is in, each one inside the one below it
    found = {}
    for key in sorted(keys, key=lambda k: k.replace("/", "\x00")):
        while inside and not key.startswith(inside[-1] + "/"):
            inside.pop()
        if inside:
            found[key] = inside[0]
        if key in files:
            inside.append(key)
    return found


def check_limits(facts: ArchiveFacts, limits: Limits) -> list[Problem]:
    """``bomb``: declared sizes and compression ratios beyond *limits*."""
    found = []
    total = sum(m.size or 0 for m in facts.members)
    if total > limits.max_size:
        found.append(problem("bomb", None, f"the entries declare {total:,} bytes in all, over the limit of"
                             f" {limits.max_size:,} (--max-size)"))
    for m in facts.members:
        if (m.size or 0) > RATIO_FROM and over_ratio(m.size or 0, m.compressed_size, limits):  # cheap test first
            found.append(problem("bomb", m.name, f"entry {quote(m.name)}: declares {m.size:,} bytes from"
                                 f" {m.compressed_size:,} compressed, a ratio over the limit of {limits.max_ratio:g}"
                                 " (--max-ratio)"))
    stream = facts.stream_size
    if over_ratio(total, stream, limits):
        found.append(problem("bomb", None, f"the entries declare {total:,} bytes from a {stream:,}-byte stream,"
                             f" a ratio over the limit of {limits.max_ratio:g} (--max-ratio)"))
    return found


def over_ratio(size: int, packed: int | None, limits: Limits) -> bool:
    """Whether *size* bytes declared from *packed* (None: not declared) is a ratio past ``--max-ratio``
    (judged only past :data:`RATIO_FROM`)."""
    return packed is not None and size > RATIO_FROM and size > limits.max_ratio * max(packed, 1)


def excluded_problems(members: Iterable[MemberFacts]) -> list[Problem]:
    """``excluded-file`` warnings for what ``create`` leaves out and the real tools let in."""
    return check_entries(members).excluded


# The components excluded_name may leave out: hidden ones (.DS_Store too), __MACOSX, __pycache__, *.pyc.
# A superset, found in one pass of the name in C; excluded_name decides.
_CANDIDATE = re.compile(r"(?:^|/)(?=\.|__MACOSX(?:/|\Z)|__pycache__(?:/|\Z)|[^/]*\.pyc(?:/|\Z))")


def _excluded_part(key: str) -> str | None:
    """Why ``create`` would leave out the first component it leaves out of *key* (normalised), or None."""
    for match in _CANDIDATE.finditer(key):
        end = key.find("/", match.end())
        part = key[match.end() : end if end >= 0 else len(key)]
        if part not in ("MANIFEST.json", "..") and (reason := excluded_name(part)) is not None:
            return reason
    return None
