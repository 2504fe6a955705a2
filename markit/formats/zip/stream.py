"""Reading a zip from a pipe, as TorchServe does: local headers in order, then the central directory to compare.

A stream cannot be sought, so each entry's data is delimited by its local header's
sizes or, with a data descriptor, by the end of its deflate stream; the central
directory that follows must then describe exactly the entries that were streamed, and
the end records must end the stream: Python's ``zipfile`` and ``unzip``, given the same
bytes as a file, read it from its last end record, so any byte after it would show them
another archive.
"""

from __future__ import annotations

import struct

from markit.engine.buffers import CHUNK
from markit.formats.base import Archive, Member, MemberSink, OpenSink
from markit.formats.flow import Flow, copy_stored, inflate
from markit.formats.zip.consistency import compare_headers, entry_problems, readable, unicode_problems
from markit.formats.zip.records import (
    CENTRAL,
    END,
    END64,
    FLAG_DESCRIPTOR,
    LOCAL,
    LOCATOR,
    METHODS,
    SIG_DESCRIPTOR,
    Header,
    ZipStructureError,
    end_of,
    kind_of,
    parse_central,
    parse_local,
)
from markit.model.limits import Limits
from markit.model.problems import quote
from markit.storage.sources import ByteSource, Truncated

__all__ = ["ZipStreamArchive"]

TRAILING_COUNTED = 16 << 20  # 16 MiB: bytes after the end record are counted this far (a second archive shows
# well before), then reported as "at least" so many and the rest is left unread


class _Discard:
    """A sink that keeps nothing: data that must be read to be skipped."""

    def write(self, chunk: bytes | memoryview) -> None:
        pass

    def done(self, member: Member, complete: bool) -> None:
        pass


class ZipStreamArchive(Archive):
    """A zip read once from a pipe: local headers in order, then the central directory to compare."""

    format = "zip"

    def __init__(self, source: ByteSource, label: str, limits: Limits) -> None:
        super().__init__(label, limits)
        self.source = source
        self.produced = 0

    def close(self) -> None:
        self.source.close()

    def scan(self, open_sink: OpenSink) -> list[Member]:
        """Every member from its local header, then the central directory checked against them."""
        locals_: dict[int, tuple[Header, Member]] = {}
        try:
            while self.complete and self.source.peek(4) == b"PK\x03\x04":
                if len(locals_) >= self.limits.max_entries:
                    self.stop("bomb", None, f"more than {self.limits.max_entries:,} entries (--max-entries)")
                    break
                header, member = self._entry(open_sink)
                locals_[header.offset] = (header, member)
            if self.complete:
                self._central(locals_)
        except (ZipStructureError, Truncated) as error:
            self.stop("corrupt", None, str(error))
        return [member for _, member in locals_.values()]

    def _entry(self, open_sink: OpenSink) -> tuple[Header, Member]:
        offset = self.source.position
        fixed = self.source.read_exact(LOCAL.size, "a local header")
        nlen, xlen = LOCAL.unpack_from(fixed)[9:11]
        header = parse_local(fixed + self.source.read_exact(nlen + xlen, "a local header"), offset)
        self.problems.extend([*entry_problems(header), *unicode_problems(header, "local header")])
        descriptor = bool(header.flags & FLAG_DESCRIPTOR)
        kind, detail = kind_of(header.name, header.mode)
        member = Member(header.name, kind, None if descriptor else header.size,
                        None if descriptor else header.compressed_size, METHODS.get(header.method) or
                        f"method {header.method}", None if descriptor else header.crc, header.mode, header.offset,
                        detail)
        sink = open_sink(member) if readable(header) and member.kind == "file" else None
        flow = self._data(header, sink or _Discard())
        if descriptor and self.complete:
            member = self._descriptor(header, member, flow)
        elif flow.error is None and flow.produced != header.size and readable(header):
            self.report("corrupt", header.name, f"entry {quote(header.name)}: {flow.produced:,} bytes, the header"
                        f" says {header.size:,}")
        if sink is not None:
            sink.done(member, flow.error is None and self.complete)
        elif (dir_sink := open_sink(member) if member.kind == "dir" else None) is not None:
            dir_sink.done(member, True)
        return Header(header.raw_name, header.name, header.flags, header.method, member.crc or 0,  # extra bytes
                      member.compressed_size or 0, member.size or 0, header.offset, header.length,  # not kept:
                      header.zip64, header.mode), member  # checked already

    def _data(self, header: Header, sink: MemberSink) -> Flow:
        descriptor = bool(header.flags & FLAG_DESCRIPTOR)
        if not readable(header) or header.method == 0:
            if descriptor:
                self.stop("corrupt", header.name, f"entry {quote(header.name)}: {METHODS.get(header.method, 'an')}"
                          " entry with a data descriptor: its end cannot be found in a stream")
                return Flow(0, 0, ("corrupt", "cannot be delimited"))
            if not readable(header):
                self.source.skip(header.compressed_size, f"entry {quote(header.name)}")
                return Flow(0, header.compressed_size, ("corrupt", "unreadable"))
        budget = self.limits.max_size - self.produced
        if not descriptor and header.size > budget:
            self.stop("bomb", header.name, f"entry {quote(header.name)}: declares {header.size:,} bytes, past the"
                      f" {self.limits.max_size:,} bytes allowed in all (--max-size)")
            return Flow(0, 0, ("bomb", "too large"))
        if header.method == 0:
            flow = copy_stored(self.source.read_into, header.size, sink, self.ring)
        else:
            flow = inflate(self.source.read, sink, compressed=None if descriptor else header.compressed_size,
                           declared=None if descriptor else header.size, budget=budget,
                           max_ratio=self.limits.max_ratio)
            self.source.unread(flow.unused)
        self.produced += flow.produced
        if flow.error is not None:
            self.stop(flow.error[0], header.name, f"entry {quote(header.name)}: {flow.error[1]}")
        elif not descriptor and header.method != 0 and flow.consumed != header.compressed_size:
            self.stop("corrupt", header.name, f"entry {quote(header.name)}: the deflate stream ends after"
                      f" {flow.consumed:,} of its {header.compressed_size:,} stored bytes")
        return flow

    def _descriptor(self, header: Header, member: Member, flow: Flow) -> Member:
        first = self.source.read_exact(4, f"the data descriptor of {quote(header.name)}")
        signed = first == struct.pack("<I", SIG_DESCRIPTOR)
        width = 8 if header.zip64 else 4
        body = (b"" if signed else first) + self.source.read_exact(4 + 2 * width - (0 if signed else 4),
                                                                   f"the data descriptor of {quote(header.name)}")
        crc, csize, size = struct.unpack("<IQQ" if width == 8 else "<III", body)
        if flow.error is None and (csize, size) != (flow.consumed, flow.produced):
            self.report("corrupt", header.name, f"entry {quote(header.name)}: its data descriptor says {csize:,}"
                        f" bytes stored and {size:,} in all; the data holds {flow.consumed:,} and {flow.produced:,}")
        return Member(member.name, member.kind, size, csize, member.method, crc, member.mode, member.offset,
                      member.detail)

    def _central(self, locals_: dict[int, tuple[Header, Member]]) -> None:
        """Read the central directory; each entry must match a local header, and gives it its mode."""
        seen: set[int] = set()
        count, cd_at = 0, self.source.position
        while self.source.peek(4) == b"PK\x01\x02":
            if count >= self.limits.max_entries:
                self.stop("bomb", None, f"more than {self.limits.max_entries:,} entries in the central directory"
                          " (--max-entries)")
                return
            central = self._central_header()
            count += 1
            self.problems.extend(unicode_problems(central, "central directory"))
            if self._match(central, locals_, seen):
                header, member = locals_[central.offset]
                kind, detail = kind_of(header.name, central.mode)
                locals_[central.offset] = header, Member(member.name, kind, member.size, member.compressed_size,
                                                         member.method, member.crc, central.mode, member.offset, detail)
        for offset, (header, _) in locals_.items():
            if offset not in seen:
                self.report("corrupt", header.name, f"entry {quote(header.name)}: not in the central directory:"
                            " TorchServe would unpack it, Python would not see it")
        self._end(count, cd_at)

    def _central_header(self) -> Header:
        where = self.source.position
        fixed = self.source.read_exact(CENTRAL.size, "the central directory")
        nlen, xlen, clen = struct.unpack_from("<HHH", fixed, 28)
        return parse_central(fixed + self.source.read_exact(nlen + xlen + clen, "the central directory"), 0, where)

    def _match(self, central: Header, locals_: dict[int, tuple[Header, Member]], seen: set[int]) -> bool:
        """Compare a central entry with the local header it points at; False if it points at none."""
        found = locals_.get(central.offset)
        name = central.name
        if found is None:
            self.report("corrupt", name, f"entry {quote(name)}: the central directory points at byte"
                        f" {central.offset:,}, where no local header starts")
            return False
        if central.offset in seen:
            self.report("bomb", name, f"entry {quote(name)}: shares its local header at byte {central.offset:,}"
                        " with another entry (overlapping entries)")
            return False
        seen.add(central.offset)
        for difference in compare_headers(found[0], central, descriptor_apart=True):
            self.report("corrupt", name, f"entry {quote(name)}: {difference}: TorchServe reads the local header,"
                        " Python the central directory")
        if found[0].flags & FLAG_DESCRIPTOR != central.flags & FLAG_DESCRIPTOR:
            self.report("corrupt", name, f"entry {quote(name)}: the data descriptor flag differs between the local"
                        " header and the central directory")
        return True

    def _end(self, count: int, cd_at: int) -> None:
        """The end records after the central directory (*count* entries from byte *cd_at*), then nothing more."""
        cd_size = self.source.position - cd_at
        end64 = self._optional(b"PK\x06\x06", END64.size, "the zip64 end record")
        locator = self._optional(b"PK\x06\x07", LOCATOR.size, "the zip64 end locator")
        if end64 is not None and locator is None:
            raise ZipStructureError(f"a zip64 end record at byte {cd_at + cd_size:,} with no locator after it:"
                                    " Python's zipfile and unzip would not find it")
        if self.source.peek(4) != b"PK\x05\x06":
            raise ZipStructureError("no end-of-central-directory record: the archive is truncated or not a zip")
        at = self.source.position
        record = self.source.read_exact(END.size, "the end record")
        end = end_of(record + self.source.read_exact(END.unpack(record)[7], "the end record's comment"), at,
                     locator, end64)
        if (end.count, end.cd_size, end.cd_offset) != (count, cd_size, cd_at):
            raise ZipStructureError(f"the end records say {end.count:,} entries in {end.cd_size:,} bytes from byte"
                                    f" {end.cd_offset:,}; the central directory holds {count:,} in {cd_size:,} from"
                                    f" byte {cd_at:,}")
        self._trailing()

    def _optional(self, signature: bytes, size: int, what: str) -> bytes | None:
        """The next *size* bytes if they start with *signature*, else None (nothing read)."""
        return self.source.read_exact(size, what) if self.source.peek(4) == signature else None

    def _trailing(self) -> None:
        """Any byte after the end record is an error; they are counted in chunks, up to :data:`TRAILING_COUNTED`."""
        first, counted = self.source.peek(4), 0
        while counted <= TRAILING_COUNTED and (chunk := self.source.read(CHUNK)):
            counted += len(chunk)
        if counted:
            what = " (a local header: another zip starts there)" if first == b"PK\x03\x04" else ""
            self.report("corrupt", None, f"{'at least ' if counted > TRAILING_COUNTED else ''}{counted:,}"
                        f" byte{'s' if counted > 1 else ''} after the end record{what}: other readers would read what"
                        " they describe, not what was streamed (Python's zipfile and unzip read a file from its last"
                        " end record)")
