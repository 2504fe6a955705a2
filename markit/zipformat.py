"""The zip format's records as bytes: local and central headers, descriptors, end records.

Pure encoding, no I/O. Written to what TorchServe's ``java.util.zip.ZipInputStream``
(local headers only) and Python's ``zipfile`` (central directory only) both accept:
see ``docs/design.md``, "Why markit writes its own zip".
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass

__all__ = [
    "FLAG_DESCRIPTOR",
    "FLAG_UTF8",
    "METHOD_DEFLATE",
    "METHOD_STORE",
    "U32_MAX",
    "ZipMember",
    "central_header",
    "data_descriptor",
    "dos_date_time",
    "end_records",
    "local_header",
]

METHOD_STORE = 0
METHOD_DEFLATE = 8
FLAG_DESCRIPTOR = 0x0008  # bit 3: crc and sizes follow the data
FLAG_UTF8 = 0x0800  # bit 11: the name is UTF-8
U32_MAX = 0xFFFFFFFF
U16_MAX = 0xFFFF
VERSION_ZIP64 = 45  # 4.5: zip64 extensions
VERSION_DEFAULT = 20  # 2.0: deflate, folders
MADE_BY_UNIX = 3 << 8  # external attributes carry a unix mode in their high 16 bits
S_IFREG = 0o100000

_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_EOCD = struct.Struct("<IHHHHIIH")
_EOCD64 = struct.Struct("<IQHHIIQQQQ")
_EOCD64_LOCATOR = struct.Struct("<IIQI")


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
    head = _LOCAL.pack(
        0x04034B50,
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
        return struct.pack("<IIQQ", 0x08074B50, crc, compressed_size, size)
    return struct.pack("<IIII", 0x08074B50, crc, compressed_size, size)


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
    head = _CENTRAL.pack(
        0x02014B50,
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
    if count >= U16_MAX or cd_offset >= U32_MAX or cd_size >= U32_MAX:
        eocd64_offset = cd_offset + cd_size
        out += _EOCD64.pack(
            0x06064B50, 44, MADE_BY_UNIX | VERSION_ZIP64, VERSION_ZIP64, 0, 0,
            count, count, cd_size, cd_offset,
        )
        out += _EOCD64_LOCATOR.pack(0x07064B50, 0, eocd64_offset, 1)
    out += _EOCD.pack(
        0x06054B50, 0, 0, min(count, U16_MAX), min(count, U16_MAX),
        min(cd_size, U32_MAX), min(cd_offset, U32_MAX), 0,
    )
    return out
