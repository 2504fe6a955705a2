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
    "ZipStructureError", "central_header", "data_descriptor", "decode_name", "dos_date_time", "end_records",
    "find_end", "kind_of", "local_header", "parse_central", "parse_local",
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
    head = LOCAL.pack(
        SIG_LOCAL,
        VERSION_ZIP64 if zip64 else VERSION_DEFAULT,
        flags,
        method,
        *date_time,
        crc,
        compressed_size,
        size,
        len(raw),
        len(extra),
    )
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
        SIG_CENTRAL,
        MADE_BY_UNIX | version,
        version,
        member.flags,
        member.method,
        *member.date_time,
        member.crc,
        csize,
        size,
        len(raw),
        len(extra),
        0,  # comment length
        0,  # disk number
        0,  # internal attributes
        (S_IFREG | member.mode) << 16,
        offset,
    )
    return head + raw + extra


def end_records(count: int, cd_offset: int, cd_size: int) -> bytes:
    """The end of central directory record, preceded by zip64 ones when a field overflows."""
    out = b""
    if count >= U16 or cd_offset >= U32_MAX or cd_size >= U32_MAX:
        eocd64_offset = cd_offset + cd_size
        out += END64.pack(
            SIG_END64, 44, MADE_BY_UNIX | VERSION_ZIP64, VERSION_ZIP64, 0, 0,
            count, count, cd_size, cd_offset,
        )
        out += LOCATOR.pack(SIG_LOCATOR, 0, eocd64_offset, 1)
    out += END.pack(
        SIG_END, 0, 0, min(count, U16), min(count, U16),
        min(cd_size, U32_MAX), min(cd_offset, U32_MAX), 0,
    )
    return out



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

