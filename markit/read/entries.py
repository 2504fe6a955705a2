"""Checks of the entries themselves: names, kinds, duplicates, declared sizes and ratios.

Pure functions of member records (:class:`~markit.read.facts.MemberFacts`); each
returns a list of :class:`~markit.model.problems.Problem`, never raises.
"""

from __future__ import annotations

from collections.abc import Iterable

from markit.model.limits import RATIO_FROM, Limits
from markit.model.names import excluded_name, normalize, unsafe_reason
from markit.model.problems import Problem, problem, quote
from markit.read.facts import ArchiveFacts, MemberFacts

__all__ = ["check_duplicates", "check_kinds", "check_limits", "check_paths", "excluded_problems"]


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


_KIND_WORDS = {"symlink": "a symbolic link", "hardlink": "a hard link"}


def check_kinds(members: Iterable[MemberFacts]) -> list[Problem]:
    """``link-entry`` and ``special-entry``: only regular files and folders are allowed."""
    found = []
    for m in members:
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
    for m in members:
        key = normalize(m.name)
        first = seen.get(key)
        if first is not None and not (first.kind == m.kind == "dir"):
            found.append(problem("duplicate-entry", m.name, f"entry {quote(m.name)}: the same name as entry"
                                 f" {quote(first.name)} once normalised ({quote(key)})"))
        seen.setdefault(key, m)
    for key, m in seen.items():
        parts = key.split("/")
        for depth in range(1, len(parts)):
            parent = seen.get("/".join(parts[:depth]))
            if parent is not None and parent.kind != "dir":
                found.append(problem("duplicate-entry", m.name, f"entry {quote(m.name)}: its folder"
                                     f" {quote(parent.name)} is also an entry of kind {parent.kind}"))
                break
    return found


def check_limits(facts: ArchiveFacts, limits: Limits) -> list[Problem]:
    """``bomb``: declared sizes and compression ratios beyond *limits*."""
    found = []
    total = sum(m.size or 0 for m in facts.members)
    if total > limits.max_size:
        found.append(problem("bomb", None, f"the entries declare {total:,} bytes in all, over the limit of"
                             f" {limits.max_size:,} (--max-size)"))
    for m in facts.members:
        size, packed = m.size or 0, m.compressed_size
        if packed is not None and size > RATIO_FROM and size > limits.max_ratio * max(packed, 1):
            found.append(problem("bomb", m.name, f"entry {quote(m.name)}: declares {size:,} bytes from {packed:,}"
                                 f" compressed, a ratio over the limit of {limits.max_ratio:g} (--max-ratio)"))
    stream = facts.stream_size
    if stream is not None and total > RATIO_FROM and total > limits.max_ratio * max(stream, 1):
        found.append(problem("bomb", None, f"the entries declare {total:,} bytes from a {stream:,}-byte stream,"
                             f" a ratio over the limit of {limits.max_ratio:g} (--max-ratio)"))
    return found


def excluded_problems(members: Iterable[MemberFacts]) -> list[Problem]:
    """``excluded-file`` warnings for what ``create`` leaves out and the real tools let in."""
    found = []
    for m in members:
        for part in normalize(m.name).split("/"):
            reason = excluded_name(part) if part not in ("MANIFEST.json", "..") else None
            if reason is not None:
                found.append(problem("excluded-file", m.name, f"entry {quote(m.name)}: {reason}; markit create"
                                     " leaves such files out"))
                break
    return found

