"""How a zip's records must agree: local header against central directory, entries end to end.

Pure functions of parsed records (:mod:`markit.formats.zip.records`) returning problems.
TorchServe reads local headers, Python's ``zipfile`` the central directory:
:func:`compare_headers` and :func:`layout_problems` say where the two views of one archive part.
"""

from __future__ import annotations

from markit.formats.zip.records import FLAG_DESCRIPTOR, FLAG_ENCRYPTED, FLAG_UTF8, METHODS, Header
from markit.model.problems import Problem, problem, quote

__all__ = ["compare_headers", "entry_problems", "layout_problems", "readable"]


def compare_headers(local: Header, central: Header) -> list[str]:
    """How a local header disagrees with its central one (descriptor values are compared elsewhere)."""
    differences = []
    if local.raw_name != central.raw_name:
        differences.append(f"the local header names it {quote(local.name)}")
    if local.method != central.method:
        differences.append(f"the local header says method {local.method}, the central directory {central.method}")
    for bit, what in ((FLAG_ENCRYPTED, "encrypted"), (FLAG_DESCRIPTOR, "data descriptor")):
        if local.flags & bit != central.flags & bit:
            differences.append(f"the {what} flag differs (local {local.flags:#06x}, central {central.flags:#06x})")
    if not local.flags & FLAG_DESCRIPTOR:
        for field in ("crc", "compressed_size", "size"):
            mine, theirs = getattr(local, field), getattr(central, field)
            if mine != theirs:
                differences.append(f"the local header says {field.replace('_', ' ')} {_number(field, mine)},"
                                   f" the central directory {_number(field, theirs)}")
    return differences


def _number(field: str, value: int) -> str:
    return f"{value:#010x}" if field == "crc" else f"{value:,}"


def layout_problems(spans: list[tuple[int, int, str]], cd_offset: int) -> list[Problem]:
    """Overlaps (``bomb``) and gaps (``corrupt``) among entries' (start, end, name) byte spans.

    TorchServe reads local headers one after the other from byte 0, so every byte up to
    the central directory must belong to exactly one entry.
    """
    found = []
    expected, previous = 0, ""
    for start, end, name in sorted(spans):
        if start < expected:
            found.append(problem("bomb", name, f"entry {quote(name)}: its local header at byte {start:,} lies"
                                 f" inside the data of entry {quote(previous)} (overlapping entries)"))
        elif start > expected:
            found.append(problem("corrupt", name, f"bytes {expected:,}-{start - 1:,} before entry {quote(name)}"
                                 " belong to no entry: TorchServe, reading local headers in sequence, would"
                                 " stop there or read an entry Python does not list"))
        if end > expected:
            expected, previous = end, name
    if expected > cd_offset:
        found.append(problem("bomb", previous, f"entry {quote(previous)}: its data runs into the central directory"
                             f" (ends at byte {expected:,}, the directory starts at {cd_offset:,})"))
    return found


def readable(header: Header) -> bool:
    """Whether markit (and TorchServe) can read this entry's data: stored or deflated, not encrypted."""
    return header.method in (0, 8) and not header.flags & FLAG_ENCRYPTED


def entry_problems(header: Header) -> list[Problem]:
    """What is wrong with one central header on its own."""
    name, found = header.name, []
    if header.flags & FLAG_ENCRYPTED:
        found.append(problem("corrupt", name, f"entry {quote(name)}: encrypted; neither markit nor TorchServe"
                             " can read it"))
    elif header.method not in (0, 8):
        found.append(problem("corrupt", name, f"entry {quote(name)}: compression method {header.method}"
                             f" ({METHODS.get(header.method, 'unknown')}); TorchServe reads only store (0) and"
                             " deflate (8)"))
    if header.method == 0 and header.size != header.compressed_size:
        found.append(problem("corrupt", name, f"entry {quote(name)}: stored, yet {header.compressed_size:,} bytes"
                             f" stored for {header.size:,}"))
    if header.name.endswith("/") and header.size:
        found.append(problem("corrupt", name, f"entry {quote(name)}: a folder that declares {header.size:,} bytes"))
    if header.flags & FLAG_UTF8 and not _utf8(header.raw_name):
        found.append(problem("corrupt", name, f"entry {quote(name)}: flagged UTF-8 but its name is not"))
    elif not header.flags & FLAG_UTF8 and not header.raw_name.isascii():
        found.append(problem("torchserve-incompatible", name, f"entry {quote(name)}: a non-ASCII name without"
                             " the UTF-8 flag: TorchServe reads it as UTF-8, Python as cp437"))
    if header.method == 0 and header.flags & FLAG_DESCRIPTOR:
        found.append(problem("torchserve-incompatible", name, f"entry {quote(name)}: stored with a data"
                             " descriptor, which TorchServe refuses (\"only DEFLATED entries can have EXT"
                             " descriptor\")"))
    return found


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True

