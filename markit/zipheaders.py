"""Zip records parsed: local and central headers, end records, and how they must agree.

Pure functions, bytes in and records or problems out; the I/O is in :mod:`markit.zipreader`.
The mirror of :mod:`markit.zipformat`, which writes these records. TorchServe reads local
headers, Python's ``zipfile`` the central directory: :func:`compare_headers` and
:func:`layout_problems` say where the two views of one archive part.
"""

from __future__ import annotations

import stat
import struct
from collections.abc import Callable
from dataclasses import dataclass

from markit.archive import Member
from markit.checks import Problem, problem, quote

__all__ = [
    "CENTRAL",
    "END",
    "END64",
    "FLAG_DESCRIPTOR",
    "FLAG_ENCRYPTED",
    "FLAG_UTF8",
    "LOCAL",
    "LOCATOR",
    "METHODS",
    "SIG_DESCRIPTOR",
    "U16",
    "End",
    "Header",
    "ZipStructureError",
    "compare_headers",
    "decode_name",
    "entry_problems",
    "find_end",
    "kind_of",
    "layout_problems",
    "parse_central",
    "parse_local",
    "readable",
]

SIG_LOCAL = 0x04034B50
SIG_CENTRAL = 0x02014B50
SIG_END = 0x06054B50
SIG_END64 = 0x06064B50
SIG_LOCATOR = 0x07064B50
SIG_DESCRIPTOR = 0x08074B50
FLAG_ENCRYPTED = 0x0001
FLAG_DESCRIPTOR = 0x0008
FLAG_UTF8 = 0x0800
U32 = 0xFFFFFFFF
U16 = 0xFFFF
METHODS = {0: "store", 8: "deflate", 9: "deflate64", 12: "bzip2", 14: "lzma", 93: "zstd", 95: "xz", 98: "ppmd",
           99: "aes"}
UNIX_HOSTS = (3, 19)  # "version made by" hosts whose external attributes carry a unix mode: unix, OS X

# The fixed parts of the records, as zipformat writes them (signature first).
LOCAL = struct.Struct("<IHHHHHIIIHH")  # local file header: 30 bytes, then name and extra
CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")  # central directory header: 46 bytes, then name, extra, comment
END = struct.Struct("<IHHHHIIH")  # end of central directory record: 22 bytes, then a comment
END64 = struct.Struct("<IQHHIIQQQQ")  # zip64 end of central directory record: 56 bytes
LOCATOR = struct.Struct("<IIQI")  # zip64 end of central directory locator: 20 bytes
_MODES: dict[int, int] = {}  # one int object per distinct mode, shared by every entry that has it
_TYPES = {stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device", stat.S_IFIFO: "a FIFO",
          stat.S_IFSOCK: "a socket"}


class ZipStructureError(ValueError):
    """A zip record that cannot be parsed; the message says what and where."""




@dataclass(frozen=True, slots=True)
class Header:
    """A local or central header, zip64 extras applied."""

    raw_name: bytes
    """The name's bytes as stored."""
    name: str
    """The name decoded: UTF-8 with flag 11, else cp437 (as Python reads it)."""
    flags: int
    """General-purpose flags."""
    method: int
    """Compression method number."""
    crc: int
    """CRC-32 (0 in a local header followed by a data descriptor)."""
    compressed_size: int
    """Stored bytes."""
    size: int
    """Uncompressed bytes."""
    offset: int
    """Central: where the entry's local header starts. Local: where this header starts."""
    length: int
    """Bytes of the header itself, name and extra (and comment) included."""
    zip64: bool = False
    """It carries a zip64 extra field."""
    mode: int | None = None
    """Central, unix hosts: ``st_mode`` from the external attributes."""

    def member(self) -> Member:
        """The member this central header describes."""
        kind, detail = kind_of(self.name, self.mode)
        method = METHODS.get(self.method, f"method {self.method}")
        return Member(self.name, kind, self.size, self.compressed_size, method, self.crc, self.mode, self.offset,
                      detail)


def kind_of(name: str, mode: int | None) -> tuple[str, str]:
    """(kind, what a special entry is) from a name (a trailing '/' is a folder) and a unix mode."""
    kind = stat.S_IFMT(mode or 0)
    if kind == stat.S_IFLNK:
        return "symlink", ""
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        return "special", _TYPES.get(kind, f"file type {kind:o}")
    return ("dir" if name.endswith("/") else "file"), ""


def decode_name(raw: bytes, flags: int) -> str:
    """A stored name as Python's ``zipfile`` decodes it (invalid UTF-8 kept as surrogates)."""
    return raw.decode("utf-8", "surrogateescape") if flags & FLAG_UTF8 else raw.decode("cp437")


def _zip64(extra: bytes, wanted: list[int], where: str) -> tuple[list[int], bool]:
    """*wanted* with each 0xFFFFFFFF value replaced from the zip64 extra field, in order."""
    at = 0
    while at + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, at)
        if at + 4 + length > len(extra):
            raise ZipStructureError(f"{where}: an extra field runs past its end")
        if tag == 1:
            values, body = list(wanted), extra[at + 4 : at + 4 + length]
            spot = 0
            for i, value in enumerate(values):
                if value == U32:
                    if spot + 8 > len(body):
                        raise ZipStructureError(f"{where}: the zip64 extra field is too short")
                    values[i] = struct.unpack_from("<Q", body, spot)[0]
                    spot += 8
            return values, True
        at += 4 + length
    return wanted, False


def parse_local(data: bytes, offset: int) -> Header:
    """The local header at the start of *data* (which holds its name and extra), found at *offset*."""
    if len(data) < LOCAL.size:
        raise ZipStructureError(f"local header at byte {offset:,}: cut short")
    sig, _, flags, method, _, _, crc, csize, size, nlen, xlen = LOCAL.unpack_from(data)
    if sig != SIG_LOCAL:
        raise ZipStructureError(f"no local header at byte {offset:,}")
    end = LOCAL.size + nlen + xlen
    if len(data) < end:
        raise ZipStructureError(f"local header at byte {offset:,}: cut short")
    raw = data[LOCAL.size : LOCAL.size + nlen]
    extra = data[LOCAL.size + nlen : end]
    zip64 = False
    if U32 in (size, csize):
        # as java.util.zip reads it: a zip64 extra of 16+ bytes holds both sizes
        values, zip64 = _zip64(extra, [U32, U32], f"local header at byte {offset:,}")
        if zip64:
            size, csize = values
    else:
        zip64 = _zip64(extra, [], f"local header at byte {offset:,}")[1]
    return Header(raw, decode_name(raw, flags), flags, method, crc, csize, size, offset, end, zip64)


def parse_central(data: bytes, at: int, where: int) -> Header:
    """The central header at *at* in *data* (the central directory), *where* bytes into the file."""
    if len(data) < at + CENTRAL.size:
        raise ZipStructureError(f"central directory entry at byte {where:,}: cut short")
    (sig, made_by, _, flags, method, _, _, crc, csize, size, nlen, xlen, clen, _, _, external,
     offset) = CENTRAL.unpack_from(data, at)
    if sig != SIG_CENTRAL:
        raise ZipStructureError(f"no central directory entry at byte {where:,}")
    start = at + CENTRAL.size
    length = CENTRAL.size + nlen + xlen + clen
    if len(data) < at + length:
        raise ZipStructureError(f"central directory entry at byte {where:,}: cut short")
    raw = data[start : start + nlen]
    values, zip64 = _zip64(data[start + nlen : start + nlen + xlen], [size, csize, offset],
                           f"central directory entry {quote(decode_name(raw, flags))}")
    size, csize, offset = values
    unix = external >> 16 if (made_by >> 8) in UNIX_HOSTS else 0
    mode = _MODES.setdefault(unix, unix) if unix else None
    return Header(raw, decode_name(raw, flags), flags, method, crc, csize, size, offset, length, zip64, mode)


@dataclass(frozen=True)
class End:
    """What the end record(s) say about the central directory."""

    count: int
    """Entries, as the end record says."""
    cd_offset: int
    """Where the central directory starts."""
    cd_size: int
    """Its bytes."""
    at: int
    """Where the end records start: the central directory must end here."""


def find_end(tail: bytes, tail_at: int, read_at: Callable[[int, int], bytes]) -> End:
    """The end of central directory record in *tail* (the file's last bytes, starting at *tail_at*).

    Zip64 end records are read through *read_at(offset, n)*. :class:`ZipStructureError` if absent.
    """
    pos = _end_position(tail)
    _, disk, cd_disk, _, count, cd_size, cd_offset, _ = END.unpack_from(tail, pos)
    if disk or cd_disk:
        raise ZipStructureError("a multi-disk (split) zip archive")
    at = tail_at + pos
    if pos >= LOCATOR.size and LOCATOR.unpack_from(tail, pos - LOCATOR.size)[0] == SIG_LOCATOR:
        _, _, end64_at, _ = LOCATOR.unpack_from(tail, pos - LOCATOR.size)
        record = read_at(end64_at, END64.size)
        if len(record) < END64.size or END64.unpack_from(record)[0] != SIG_END64:
            raise ZipStructureError(f"the zip64 end record is not at byte {end64_at:,}, where its locator says")
        _, _, _, _, _, _, _, count, cd_size, cd_offset = END64.unpack_from(record)
        at = end64_at
    return End(count, cd_offset, cd_size, at)


def _end_position(tail: bytes) -> int:
    """Where the end record starts in *tail*: one whose comment reaches the end, else the last complete one."""
    last = -1
    pos = tail.rfind(b"PK\x05\x06")
    while pos >= 0:
        if pos + END.size <= len(tail):
            if pos + END.size + END.unpack_from(tail, pos)[7] == len(tail):
                return pos
            last = max(last, pos)
        pos = tail.rfind(b"PK\x05\x06", 0, pos)
    if last < 0:
        raise ZipStructureError("no end-of-central-directory record: the archive is truncated or not a zip")
    return last


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
