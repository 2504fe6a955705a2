"""The zip format's records, both ways: local and central headers, descriptors, end records.

Pure, no I/O; each record's layout is defined once (CPython ``zipfile``'s shape) and
used to encode (:func:`local_header`, :func:`central_header`, :func:`end_records`) and
to decode (:func:`parse_local`, :func:`parse_central`, :func:`find_end`). Written to what
TorchServe's ``java.util.zip.ZipInputStream`` (local headers only) and Python's ``zipfile``
(central directory only) both accept: see ``docs/design.md``, "Why markit writes its own zip".
"""

from __future__ import annotations

import stat
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from markit.formats.base import Member
from markit.model.problems import quote

__all__ = [
    "CENTRAL", "END", "END64", "FLAG_DESCRIPTOR", "FLAG_ENCRYPTED", "FLAG_UTF8", "LOCAL", "LOCATOR", "METHODS",
    "METHOD_DEFLATE", "METHOD_STORE", "SIG_DESCRIPTOR", "U16", "U32", "U32_MAX", "End", "Header", "ZipMember",
    "ZipStructureError", "central_header", "data_descriptor", "decode_name", "dos_date_time", "end_of",
    "end_records", "extra_fields", "find_end", "kind_of", "local_header", "parse_central", "parse_local",
]

SIG_LOCAL = 0x04034B50
SIG_CENTRAL = 0x02014B50
SIG_END = 0x06054B50
SIG_END64 = 0x06064B50
SIG_LOCATOR = 0x07064B50
SIG_DESCRIPTOR = 0x08074B50
METHOD_STORE = 0
METHOD_DEFLATE = 8
METHODS = {0: "store", 8: "deflate", 9: "deflate64", 12: "bzip2", 14: "lzma", 93: "zstd", 95: "xz", 98: "ppmd",
           99: "aes"}
FLAG_ENCRYPTED = 0x0001
FLAG_DESCRIPTOR = 0x0008  # bit 3: crc and sizes follow the data
FLAG_UTF8 = 0x0800  # bit 11: the name is UTF-8
U32 = U32_MAX = 0xFFFFFFFF
U16 = 0xFFFF
VERSION_ZIP64 = 45  # 4.5: zip64 extensions
VERSION_DEFAULT = 20  # 2.0: deflate, folders
MADE_BY_UNIX = 3 << 8  # external attributes carry a unix mode in their high 16 bits
UNIX_HOSTS = (3, 19)  # "version made by" hosts whose external attributes carry a unix mode: unix, OS X
S_IFREG = 0o100000

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


# Encoding: what the writer emits.


@dataclass(frozen=True)
class ZipMember:
    """One entry as the central directory records it, once its data is written."""

    name: str
    """Archive name, '/'-separated."""
    method: int
    """METHOD_STORE or METHOD_DEFLATE."""
    flags: int
    """General-purpose flags as in the local header."""
    date_time: tuple[int, int]
    """(DOS time, DOS date)."""
    crc: int
    """CRC-32 of the uncompressed bytes."""
    compressed_size: int
    """Bytes of data as stored."""
    size: int
    """Bytes once uncompressed."""
    offset: int
    """Where the local header starts."""
    mode: int
    """Unix permission bits (0o644 or 0o755)."""


def dos_date_time(epoch: float) -> tuple[int, int]:
    """(DOS time, DOS date) for *epoch*, read in UTC and clamped to 1980..2107."""
    year, month, day, hour, minute, second = time.gmtime(max(epoch, 315532800))[:6]
    if year > 2107:
        year, month, day, hour, minute, second = 2107, 12, 31, 23, 59, 58
    return (hour << 11) | (minute << 5) | (second // 2), ((year - 1980) << 9) | (month << 5) | day


def _name_flags(name: str) -> tuple[bytes, int]:
    try:
        return name.encode("ascii"), 0
    except UnicodeEncodeError:
        return name.encode("utf-8"), FLAG_UTF8


def local_header(
    name: str,
    *,
    method: int,
    date_time: tuple[int, int],
    crc: int,
    compressed_size: int,
    size: int,
    descriptor: bool,
    zip64: bool,
) -> bytes:
    """A local file header.

    With *zip64*, the 32-bit sizes read 0xFFFFFFFF and a zip64 extra field holds
    the real ones (TorchServe loads such entries). With *descriptor*, crc and
    sizes are zero here and follow the data; Java accepts that for DEFLATE only.
    """
    raw, flags = _name_flags(name)
    if descriptor:
        flags |= FLAG_DESCRIPTOR
        crc = compressed_size = size = 0
    extra = b""
    if zip64:
        extra = struct.pack("<HHQQ", 1, 16, size, compressed_size)
        compressed_size = size = U32_MAX
    version = VERSION_ZIP64 if zip64 else VERSION_DEFAULT
    head = LOCAL.pack(SIG_LOCAL, version, flags, method, *date_time, crc, compressed_size, size, len(raw), len(extra))
    return head + raw + extra


def data_descriptor(crc: int, compressed_size: int, size: int, *, zip64: bool) -> bytes:
    """A data descriptor with its signature: 16 bytes, or 24 with 8-byte sizes."""
    if zip64:
        return struct.pack("<IIQQ", SIG_DESCRIPTOR, crc, compressed_size, size)
    return struct.pack("<IIII", SIG_DESCRIPTOR, crc, compressed_size, size)


def central_header(member: ZipMember) -> bytes:
    """A central directory header, with a zip64 extra for the fields that overflow."""
    raw, _ = _name_flags(member.name)
    extra_fields: list[int] = []
    size, csize, offset = member.size, member.compressed_size, member.offset
    if size >= U32_MAX:
        extra_fields.append(size)
        size = U32_MAX
    if csize >= U32_MAX:
        extra_fields.append(csize)
        csize = U32_MAX
    if offset >= U32_MAX:
        extra_fields.append(offset)
        offset = U32_MAX
    extra = b""
    if extra_fields:
        extra = struct.pack(f"<HH{len(extra_fields)}Q", 1, 8 * len(extra_fields), *extra_fields)
    version = VERSION_ZIP64 if extra_fields else VERSION_DEFAULT
    head = CENTRAL.pack(
        SIG_CENTRAL, MADE_BY_UNIX | version, version, member.flags, member.method, *member.date_time, member.crc,
        csize, size, len(raw), len(extra),
        0, 0, 0,  # comment length, disk number, internal attributes
        (S_IFREG | member.mode) << 16, offset,
    )
    return head + raw + extra


def end_records(count: int, cd_offset: int, cd_size: int) -> bytes:
    """The end of central directory record, preceded by zip64 ones when a field overflows."""
    out = b""
    if count >= U16 or cd_offset >= U32_MAX or cd_size >= U32_MAX:
        out += END64.pack(SIG_END64, 44, MADE_BY_UNIX | VERSION_ZIP64, VERSION_ZIP64, 0, 0, count, count, cd_size,
                          cd_offset)
        out += LOCATOR.pack(SIG_LOCATOR, 0, cd_offset + cd_size, 1)
    return out + END.pack(SIG_END, 0, 0, min(count, U16), min(count, U16), min(cd_size, U32_MAX),
                          min(cd_offset, U32_MAX), 0)


# Decoding: what the readers parse.


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
    extra: bytes = b""
    """The extra field's bytes as parsed (readers drop them once the header is checked)."""
    comment: bytes = b""
    """Central: the entry's comment as stored."""

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


def extra_fields(extra: bytes, where: str) -> list[tuple[int, bytes]]:
    """Each (tag, data) of a header's extra bytes; :class:`ZipStructureError` if one runs past their end."""
    fields, at = [], 0
    while at + 4 <= len(extra):  # as Python reads them: 1 to 3 bytes left over are ignored
        tag, length = struct.unpack_from("<HH", extra, at)
        if at + 4 + length > len(extra):
            raise ZipStructureError(f"{where}: an extra field runs past its end")
        fields.append((tag, extra[at + 4 : at + 4 + length]))
        at += 4 + length
    return fields


def _zip64(extra: bytes, wanted: list[int], where: str) -> tuple[list[int], bool]:
    """*wanted* with each 0xFFFFFFFF value replaced from the zip64 extra field, in order."""
    for tag, body in extra_fields(extra, where):
        if tag == 1:
            values, spot = list(wanted), 0
            for i, value in enumerate(values):
                if value == U32:
                    if spot + 8 > len(body):
                        raise ZipStructureError(f"{where}: the zip64 extra field is too short")
                    values[i] = struct.unpack_from("<Q", body, spot)[0]
                    spot += 8
            return values, True
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
    wanted = [U32, U32] if U32 in (size, csize) else []  # as java.util.zip reads it: a zip64 extra holds both
    values, zip64 = _zip64(extra, wanted, f"local header at byte {offset:,}")
    if zip64 and wanted:
        size, csize = values
    return Header(raw, decode_name(raw, flags), flags, method, crc, csize, size, offset, end, zip64, extra=extra)


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
    raw, extra = data[start : start + nlen], data[start + nlen : start + nlen + xlen]
    values, zip64 = _zip64(extra, [size, csize, offset], f"central directory entry {quote(decode_name(raw, flags))}")
    size, csize, offset = values
    unix = external >> 16 if (made_by >> 8) in UNIX_HOSTS else 0
    mode = _MODES.setdefault(unix, unix) if unix else None
    return Header(raw, decode_name(raw, flags), flags, method, crc, csize, size, offset, length, zip64, mode, extra,
                  data[start + nlen + xlen : at + length])


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

    The zip64 end record is read through *read_at(offset, n)*. :class:`ZipStructureError` if
    absent, or if another reader would take another (see :func:`end_of`).
    """
    pos = _end_position(tail)
    at = tail_at + pos
    locator = tail[pos - LOCATOR.size : pos] if pos >= LOCATOR.size else b""
    if locator[:4] != struct.pack("<I", SIG_LOCATOR):
        return end_of(tail[pos:], at, None, None)
    return end_of(tail[pos:], at, locator, read_at(at - LOCATOR.size - END64.size, END64.size))


def end_of(record: bytes, at: int, locator: bytes | None, end64: bytes | None) -> End:
    """What an end record says: *record* holds it and every byte after it (its comment, to the end of the
    archive), found at byte *at*; *locator* is the zip64 locator just before it, if any, and *end64* the
    56 bytes before that locator.

    :class:`ZipStructureError` wherever Python's ``zipfile`` or Info-ZIP ``unzip`` would read the
    archive's end otherwise: both take the *last* end record signature in the file, and each finds
    the zip64 end record its own way (Python: just before the locator; unzip: where it points).
    """
    _, disk, cd_disk, here, count, cd_size, cd_offset, clen = END.unpack_from(record)
    if (after := len(record) - END.size - clen) > 0:
        raise ZipStructureError(f"{after:,} byte{'s' if after > 1 else ''} after the end record (byte {at:,}) and its"
                                f" {clen:,}-byte comment: the end record must end the archive, where other readers"
                                " look for it")
    if after < 0:
        raise ZipStructureError(f"the end record (byte {at:,}) declares a {clen:,}-byte comment; the archive ends"
                                f" {len(record) - END.size:,} bytes after it")
    if (inner := record.rfind(struct.pack("<I", SIG_END))) > 0:
        raise ZipStructureError(f"another end record signature at byte {at + inner:,}, inside the end record at"
                                f" byte {at:,} or its comment: Python's zipfile and unzip read the archive from it")
    if disk or cd_disk or here != count:
        raise ZipStructureError("a multi-disk (split) zip archive")
    if locator is None:
        return End(count, cd_offset, cd_size, at)
    return _zip64_end((count, cd_size, cd_offset), at, locator, end64)


def _zip64_end(classic: tuple[int, int, int], at: int, locator: bytes, end64: bytes | None) -> End:
    """The zip64 end record before *locator*, which must agree with the *classic* (entries, size, offset)."""
    _, locator_disk, pointed, disks = LOCATOR.unpack(locator)
    where = at - LOCATOR.size - END64.size
    if pointed != where:
        raise ZipStructureError(f"the zip64 locator points at byte {pointed:,}, not just before itself (byte"
                                f" {where:,}): unzip reads the zip64 end record where it points, Python's zipfile"
                                " right before the locator")
    if end64 is None or len(end64) < END64.size or END64.unpack_from(end64)[0] != SIG_END64:
        raise ZipStructureError(f"no zip64 end record at byte {where:,}, where its locator points")
    _, length, _, _, disk, cd_disk, here, count, cd_size, cd_offset = END64.unpack_from(end64)
    if length != END64.size - 12:
        raise ZipStructureError(f"the zip64 end record says it is {length + 12:,} bytes long: {END64.size} expected"
                                " (Python's zipfile reads no extensible data)")
    if locator_disk or disks != 1 or disk or cd_disk or here != count:
        raise ZipStructureError(f"a multi-disk (split) zip archive (its zip64 locator says {disks:,} disks)")
    for what, mine, theirs, saturated in zip(("entries", "central directory bytes", "central directory offset"),
                                             classic, (count, cd_size, cd_offset), (U16, U32, U32)):
        if mine not in (theirs, saturated):  # unzip uses the zip64 record only if these agree; Python always
            raise ZipStructureError(f"the end record says {what} {mine:,}, the zip64 end record {theirs:,}:"
                                    " unzip reads the first, Python's zipfile the second")
    return End(count, cd_offset, cd_size, where)


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
