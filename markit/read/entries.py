"""Checks of the entries themselves: names, kinds, duplicates, declared sizes and ratios.

Pure functions of member records (:class:`~markit.read.facts.MemberFacts`); each
returns a list of :class:`~markit.model.problems.Problem`, never raises. Each runs in
time linear in the total bytes of the names: a name longer than any filesystem takes
is ``unsafe-path`` (:func:`check_paths`) and every other check skips it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from markit.model.limits import RATIO_FROM, Limits
from markit.model.names import excluded_name, normalize, too_long, unsafe_reason
from markit.model.problems import Problem, problem, quote
from markit.read.facts import ArchiveFacts, MemberFacts

__all__ = ["check_duplicates", "check_kinds", "check_limits", "check_paths", "excluded_problems", "over_ratio"]


def check_paths(members: Iterable[MemberFacts]) -> list[Problem]:
    """``unsafe-path`` for names that could land outside the destination."""
    found = []
    for m in members:
        reason = unsafe_reason(m.name)
        if reason is None and normalize(m.name) == "" and m.kind != "dir":
            reason = "the name has no file name in it"
        if reason is not None:
            found.append(problem("unsafe-path", m.name, f"entry {quote(m.name)}: {reason}"))
    return found


def _sized(members: Iterable[MemberFacts]) -> list[MemberFacts]:
    """The members whose names some filesystem can hold: the others are only ``unsafe-path``."""
    return [m for m in members if too_long(m.name) is None]


_KIND_WORDS = {"symlink": "a symbolic link", "hardlink": "a hard link"}


def check_kinds(members: Iterable[MemberFacts]) -> list[Problem]:
    """``link-entry`` and ``special-entry``: only regular files and folders are allowed."""
    found = []
    for m in _sized(members):
        if m.kind in _KIND_WORDS:
            target = f" to {quote(m.detail)}" if m.detail else ""
            found.append(problem("link-entry", m.name, f"entry {quote(m.name)}: {_KIND_WORDS[m.kind]}{target},"
                                 " expected a regular file or folder"))
        elif m.kind == "special":
            found.append(problem("special-entry", m.name, f"entry {quote(m.name)}: {m.detail or 'a special file'},"
                                 " expected a regular file or folder"))
    return found


def check_duplicates(members: Iterable[MemberFacts]) -> list[Problem]:
    """``duplicate-entry``: one name twice after normalisation, or a name that is both file and folder."""
    seen: dict[str, MemberFacts] = {}
    found = []
    for m in _sized(members):
        key = normalize(m.name)
        first = seen.get(key)
        if first is not None and not (first.kind == m.kind == "dir"):
            found.append(problem("duplicate-entry", m.name, f"entry {quote(m.name)}: the same name as entry"
                                 f" {quote(first.name)} once normalised ({quote(key)})"))
        seen.setdefault(key, m)
    under = _under_files(list(seen), {key for key, m in seen.items() if m.kind != "dir"})
    for key, m in seen.items():
        if key in under:
            parent = seen[under[key]]
            found.append(problem("duplicate-entry", m.name, f"entry {quote(m.name)}: its folder"
                                 f" {quote(parent.name)} is also an entry of kind {parent.kind}"))
    return found


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
        if over_ratio(m.size or 0, m.compressed_size, limits):
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
    found = []
    for m in _sized(members):
        reason = _excluded_part(normalize(m.name))
        if reason is not None:
            found.append(problem("excluded-file", m.name, f"entry {quote(m.name)}: {reason}; markit create"
                                 " leaves such files out"))
    return found


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
