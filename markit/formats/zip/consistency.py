"""How a zip's records must agree: local header against central directory, entries end to end, names with
the Unicode extra fields.

Pure functions of parsed records (:mod:`markit.formats.zip.records`) returning problems.
TorchServe reads local headers, Python's ``zipfile`` the central directory, Info-ZIP ``unzip``
the Unicode Path extra field when there is one: :func:`compare_headers`, :func:`layout_problems`
and :func:`unicode_problems` say where the views of one archive part.
"""

from __future__ import annotations

import struct
import zlib

from markit.formats.zip.records import (
    FLAG_DESCRIPTOR,
    FLAG_ENCRYPTED,
    FLAG_UTF8,
    METHODS,
    Header,
    ZipStructureError,
    decode_name,
    extra_fields,
)
from markit.model.problems import Problem, problem, quote

__all__ = ["compare_headers", "entry_problems", "layout_problems", "readable", "unicode_problems"]

UNICODE_PATH = 0x7075  # Info-ZIP Unicode Path extra field: version (1), CRC-32 of the header's name, UTF-8 name
UNICODE_COMMENT = 0x6375  # Info-ZIP Unicode Comment extra field: the same for the entry's comment


def compare_headers(local: Header, central: Header, *, descriptor_apart: bool = False) -> list[str]:
    """How a local header disagrees with its central one (descriptor values are compared elsewhere).

    With *descriptor_apart* (a stream, whose local header carries its descriptor's values), the data
    descriptor flag is left to the caller and the values are compared whatever it says.
    """
    differences = []
    if local.raw_name != central.raw_name:
        differences.append(f"the local header names it {quote(local.name)}")
    if local.method != central.method:
        differences.append(f"the local header says method {local.method}, the central directory {central.method}")
    ignored = FLAG_DESCRIPTOR if descriptor_apart else 0
    for bit, what in ((FLAG_ENCRYPTED, "encrypted"), (FLAG_DESCRIPTOR, "data descriptor")):
        if (local.flags & bit != central.flags & bit) and bit != ignored:
            flags = f"local {local.flags & ~ignored:#06x}, central {central.flags & ~ignored:#06x}"
            differences.append(f"the {what} flag differs ({flags})")
    if descriptor_apart or not local.flags & FLAG_DESCRIPTOR:
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



def unicode_problems(header: Header, where: str) -> list[Problem]:
    """Info-ZIP Unicode Path (0x7075) and Unicode Comment (0x6375) fields in *header* (found in the *where*)
    that give a name or comment other than the header's own.

    unzip (and Python from 3.12) use such a field only when its version is 1 and its CRC-32 is that of
    the header's raw name (or comment): otherwise they ignore it and show the header's. Only a field
    they would use can make them see something else, so only one of those that differs is ``corrupt``
    (or one Python 3.12+ refuses outright: a Unicode Path field under 5 bytes, or one not UTF-8).
    """
    if not header.extra:
        return []
    try:
        fields = extra_fields(header.extra, f"entry {quote(header.name)}")
    except ZipStructureError:
        return []  # the header's parse already stopped on this
    found = (_unicode_field(header, tag == UNICODE_PATH, body, where) for tag, body in fields
             if tag in (UNICODE_PATH, UNICODE_COMMENT))
    return [p for p in found if p is not None]


def _unicode_field(header: Header, path: bool, body: bytes, where: str) -> Problem | None:
    """The problem with one Unicode Path (*path*) or Comment field's *body*, if a reader would use it."""
    name = header.name
    what = f"entry {quote(name)}: its Info-ZIP {'Unicode Path' if path else 'Unicode Comment'} field in the {where}"
    if len(body) < 5:  # no room for a version and a CRC
        return problem("corrupt", name, f"{what} holds {len(body)} bytes, 5 at least: Python 3.12+ refuses"
                       " the archive") if path else None
    raw = header.raw_name if path else header.comment
    if body[0] != 1 or struct.unpack_from("<I", body, 1)[0] != zlib.crc32(raw) or len(body) == 5:
        return None  # unzip ignores it (and an empty name only says the header's name is UTF-8)
    try:
        given: str | None = body[5:].decode("utf-8")
    except UnicodeDecodeError:
        given = None
    shown = name if path else decode_name(raw, header.flags)
    if given == shown:
        return None
    said = "is not UTF-8" if given is None else f"{'names it' if path else 'gives the comment'} {quote(given)}"
    readers = ("unzip shows the field's, Python 3.11 and TorchServe the header's" if path else
               "readers that honour the field (Apache Commons Compress) show it, Python and unzip the header's")
    return problem("corrupt", name, f"{what} {said}, the header {quote(shown)}: {readers}")
