"""Reading a zip (``.mar``): a file through its central directory, a stream through its local headers.

TorchServe's frontend reads a ``.mar`` with ``java.util.zip.ZipInputStream``, which
walks the local headers in order and never looks at the central directory; Python's
``zipfile`` reads only the central directory. So a file is read both ways and the two
must agree: same names, methods, flags, CRCs and sizes, entries laid end to end from
byte 0 to the central directory with no overlap (a ``bomb``: the same bytes counted
twice) and no gap (bytes one reader sees and the other does not). A stream is read the
way TorchServe reads it, then checked against the central directory that follows.

Records are parsed by :mod:`markit.formats.zip.records` and data flows through :mod:`markit.formats.flow`,
in 1 MiB chunks with a bounded inflate.
"""

from __future__ import annotations

import os
import struct
from array import array

from markit.formats.base import Archive, Member, MemberSink, OpenSink
from markit.formats.flow import Flow, copy_stored, inflate
from markit.formats.zip.consistency import (
    compare_headers,
    entry_problems,
    layout_problems,
    readable,
    unicode_problems,
)
from markit.formats.zip.records import (
    CENTRAL,
    END,
    FLAG_DESCRIPTOR,
    FLAG_UTF8,
    LOCAL,
    LOCATOR,
    SIG_DESCRIPTOR,
    U16,
    Header,
    ZipStructureError,
    find_end,
    parse_central,
    parse_local,
)
from markit.model.limits import Limits
from markit.model.problems import quote
from markit.storage.sources import ByteSource, Truncated

__all__ = ["ZipFileArchive"]


class ZipFileArchive(Archive):
    """A zip file: members from the central directory, checked against the local headers."""

    format = "zip"

    def __init__(self, source: ByteSource, label: str, limits: Limits) -> None:
        super().__init__(label, limits)
        self.source = source
        self.file = source.file
        self.fd = source.file.fileno()
        self.size = source.size or 0
        self.cd_offset = 0
        self._members: list[Member] | None = None
        # Per member, in central directory order; arrays of 8-byte ints: 16 bytes an entry.
        self._codes = array("q")  # flags | method << 16 | zip64 << 32: what a Member does not hold
        self._data_at = array("q")  # where its data starts (-1: its local header is unreadable)
        self._checked = False
        self._cursor = 0  # where read() looks for its member first: right after the last one read

    def close(self) -> None:
        self.source.close()

    def _read_at(self, offset: int, n: int) -> bytes:
        return os.pread(self.fd, n, offset) if 0 <= offset < self.size else b""

    def index(self) -> list[Member]:
        """Members in central directory order; no entry data is read."""
        if self._members is None:
            self._members = []
            try:
                self._central(self._members)
            except (ZipStructureError, Truncated) as error:
                self.stop("corrupt", None, str(error))
            self._data_at.extend([-1] * len(self._members))
        return self._members

    def _central(self, members: list[Member]) -> None:
        tail_at = max(0, self.size - (END.size + U16 + LOCATOR.size))
        end = find_end(self._read_at(tail_at, self.size - tail_at), tail_at, self._read_at)
        if end.cd_offset + end.cd_size != end.at:
            raise ZipStructureError(f"the central directory ({end.cd_size:,} bytes at byte {end.cd_offset:,}) does not"
                                    f" end where the end record starts (byte {end.at:,}): Python's zipfile would read"
                                    f" every entry {end.at - end.cd_size - end.cd_offset:+,} bytes from where it says,"
                                    " as in a zip appended to other bytes")
        self.cd_offset = end.cd_offset
        self.file.seek(end.cd_offset)
        reader = ByteSource(self.file, size=None)
        while reader.position < end.cd_size:
            if len(members) >= self.limits.max_entries:
                self.stop("bomb", None, f"more than {self.limits.max_entries:,} entries (--max-entries)")
                return
            header = self._next_central(reader, end.cd_offset)
            self.problems.extend(unicode_problems(header, "central directory"))
            members.append(header.member())
            self._codes.append(header.flags | header.method << 16 | int(header.zip64) << 32)
        if len(members) != end.count or reader.position != end.cd_size:
            raise ZipStructureError(f"the end record says {end.count:,} entries in {end.cd_size:,} bytes; the central"
                                    f" directory holds {len(members):,} in {reader.position:,}")

    def _header(self, i: int) -> Header:
        """Member *i*'s central header, rebuilt."""
        m, code = self.index()[i], self._codes[i]
        flags = code & 0xFFFF
        raw = m.name.encode("utf-8", "surrogateescape") if flags & FLAG_UTF8 else m.name.encode("cp437")
        return Header(raw, m.name, flags, (code >> 16) & 0xFFFF, m.crc or 0, m.compressed_size or 0, m.size or 0,
                      m.offset or 0, 0, bool(code >> 32), m.mode)

    def _next_central(self, reader: ByteSource, base: int) -> Header:
        where = base + reader.position
        fixed = reader.read_exact(CENTRAL.size, "the central directory")
        nlen, xlen, clen = struct.unpack_from("<HHH", fixed, 28)
        rest = reader.read_exact(nlen + xlen + clen, "the central directory")
        return parse_central(fixed + rest, 0, where)

    def check_structure(self) -> None:
        """Each entry's local header against its central one; the entries' layout; unreadable entries."""
        if self._checked:
            return
        self._checked = True
        members = self.index()
        if not self.complete:
            return
        spans: list[tuple[int, int, str]] = []
        reach = 0
        for i in sorted(range(len(members)), key=lambda i: members[i].offset or 0):
            header = self._header(i)
            self.problems.extend(entry_problems(header))
            span = self._check_local(i, header)
            if span is None:
                continue
            if span[0] < reach:  # overlapping entries (a bomb, reported below): no byte is inflated twice
                self._data_at[i] = -1
            reach = max(reach, span[1])
            spans.append(span)
        self.problems.extend(layout_problems(spans, self.cd_offset))
        end = max((span[1] for span in spans), default=0)
        if end < self.cd_offset and self._read_at(end, 4) == b"PK\x03\x04":
            self.report("corrupt", None, f"a local header at byte {end:,} that the central directory does not list:"
                        " TorchServe would unpack that entry, Python would not see it")

    def _check_local(self, i: int, central: Header) -> tuple[int, int, str] | None:
        fixed = self._read_at(central.offset, LOCAL.size)
        extra = LOCAL.unpack_from(fixed)[9] + LOCAL.unpack_from(fixed)[10] if len(fixed) == LOCAL.size else 0
        try:
            local = parse_local(fixed + self._read_at(central.offset + LOCAL.size, extra), central.offset)
        except ZipStructureError as error:
            self.report("corrupt", central.name, f"entry {quote(central.name)}: {error}")
            return None
        for difference in compare_headers(local, central):
            self.report("corrupt", central.name, f"entry {quote(central.name)}: {difference}: TorchServe reads the"
                        " local header, Python the central directory")
        self.problems.extend(unicode_problems(local, "local header"))
        data_at = central.offset + local.length
        self._data_at[i] = data_at
        end = data_at + central.compressed_size
        if local.flags & FLAG_DESCRIPTOR:
            end += self._check_descriptor(central, end, local.zip64)
        return central.offset, end, central.name

    def _check_descriptor(self, central: Header, at: int, zip64: bool) -> int:
        data = self._read_at(at, 24 if zip64 else 16)
        signed = data[:4] == struct.pack("<I", SIG_DESCRIPTOR)
        body = data[4:] if signed else data
        width = 8 if zip64 else 4
        if len(body) < 4 + 2 * width:
            self.report("corrupt", central.name, f"entry {quote(central.name)}: its data descriptor is cut short")
            return len(data)
        crc, csize, size = struct.unpack_from("<IQQ" if zip64 else "<III", body)
        if (crc, csize, size) != (central.crc, central.compressed_size, central.size):
            self.report("corrupt", central.name, f"entry {quote(central.name)}: its data descriptor says CRC"
                        f" {crc:#010x}, {csize:,} bytes stored, {size:,} in all; the central directory"
                        f" {central.crc:#010x}, {central.compressed_size:,}, {central.size:,}")
        return (4 if signed else 0) + 4 + 2 * width

    def read(self, member: Member, sink: MemberSink) -> None:
        """Push one member's data through *sink*."""
        self.check_structure()
        members, start = self.index(), self._cursor
        n = len(members)
        # Looked for from the last one read: members read in order (inspect, unpack's preflight) cost one pass.
        at = next((j % n for j in range(start, start + n) if members[j % n] is member), None)
        if at is None:
            sink.done(member, False)
            return
        self._cursor = at + 1
        self._read_one(at, sink, self.limits.max_size)

    def scan(self, open_sink: OpenSink) -> list[Member]:
        """Every member's data, read in file order; members returned in central directory order."""
        members = self.index()
        self.check_structure()
        produced = 0
        for i in sorted(range(len(members)), key=lambda i: members[i].offset or 0):
            sink = open_sink(members[i])
            if sink is not None:
                produced += self._read_one(i, sink, self.limits.max_size - produced)
        return members

    def _read_one(self, i: int, sink: MemberSink, budget: int) -> int:
        """Member *i*'s data through *sink*, if it declares no more than *budget* bytes; the bytes produced."""
        member, header, data_at = self.index()[i], self._header(i), self._data_at[i]
        if member.kind != "file" or data_at < 0 or not readable(header) or header.size > budget:
            sink.done(member, member.kind == "dir")  # entries past --max-size in all are reported by check_limits
            return 0
        position = [data_at]

        def read(n: int) -> bytes:
            data = self._read_at(position[0], n)
            position[0] += len(data)
            return data

        def read_into(view: memoryview) -> int:
            got = os.preadv(self.fd, [view], position[0])
            position[0] += got
            return got

        if header.method == 0:
            flow = copy_stored(read_into, min(header.size, header.compressed_size), sink, self.ring)
        else:
            flow = inflate(read, sink, compressed=header.compressed_size, declared=header.size,
                           budget=budget, max_ratio=self.limits.max_ratio)
        self._flow_problems(header, flow)
        sink.done(member, flow.error is None)
        return flow.produced

    def _flow_problems(self, header: Header, flow: Flow) -> None:
        name = header.name
        if flow.error is not None:
            self.report(flow.error[0], name, f"entry {quote(name)}: {flow.error[1]}")
        elif header.method != 0 and flow.consumed != header.compressed_size:
            self.report("corrupt", name, f"entry {quote(name)}: the deflate stream ends after {flow.consumed:,} of"
                        f" its {header.compressed_size:,} stored bytes")
        elif flow.produced != header.size:
            self.report("corrupt", name, f"entry {quote(name)}: {flow.produced:,} bytes, the header says"
                        f" {header.size:,}")

