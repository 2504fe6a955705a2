"""Reading a zip file through its central directory, checked against its local headers.

TorchServe's frontend reads a ``.mar`` with ``java.util.zip.ZipInputStream``, which
walks the local headers in order and never looks at the central directory; Python's
``zipfile`` reads only the central directory. So a file is read both ways and the two
must agree: same names, methods, flags, CRCs and sizes, entries laid end to end from
byte 0 to the central directory with no overlap (a ``bomb``: the same bytes counted
twice) and no gap (bytes one reader sees and the other does not). A stream is read by
:mod:`markit.formats.zip.stream`.

Cost per entry (docs/design.md, "Cost per file (read)"): the central directory is read in
1 MiB windows and parsed in one pass; an entry with no extra field and an ASCII name (what
``markit create`` and most zip tools write) is parsed inline, compared with its local header
from one ``pread``, and its data, up to 1 MiB, read with one more. Any other entry, and any
entry whose local header is not the plain image of its central one, goes through the general
parsers of :mod:`markit.formats.zip.records` and the checks of :mod:`markit.formats.zip.consistency`,
so every check still runs wherever the fast comparison cannot prove it would find nothing.
"""

from __future__ import annotations

import functools
import itertools
import os
import stat
import struct
from array import array
from typing import Any

from markit.engine.buffers import CHUNK
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
    FLAG_ENCRYPTED,
    FLAG_UTF8,
    LOCAL,
    LOCATOR,
    METHODS,
    SIG_DESCRIPTOR,
    U16,
    Header,
    ZipStructureError,
    find_end,
    kind_of,
    parse_central,
    parse_local,
)
from markit.model.limits import Limits
from markit.model.problems import Problem, problem, quote
from markit.storage.sources import ByteSource, Pread, Preadv, Truncated

__all__ = ["ZipFileArchive"]

WINDOW = CHUNK  # 1 MiB of central directory per read: ~13,000 typical entries, and memory stays bounded
_SIG_CENTRAL, _SIG_LOCAL = 0x02014B50, 0x04034B50
_UNIX_HOSTS = (3, 19)  # "version made by" hosts whose external attributes carry a unix mode: unix, OS X
_PLAIN_KINDS = (0, stat.S_IFREG, stat.S_IFDIR)
_GENERAL = 1 << 33  # in a code: the entry needs the general parsers and checks (not a plain one)


class ZipFileArchive(Archive):
    """A zip file: members from the central directory, checked against the local headers."""

    format = "zip"

    def __init__(self, source: ByteSource, label: str, limits: Limits) -> None:
        super().__init__(label, limits)
        self.source = source
        self._pread, self._preadv = _positional(source)
        self.size = source.size or 0
        self.cd_offset = 0
        self._members: list[Member] | None = None
        # Per member, in central directory order; arrays of 8-byte ints: 16 bytes an entry.
        self._codes = array("q")  # flags | method << 16 | zip64 << 32 | _GENERAL: what a Member does not hold
        self._data_at = array("q")  # where its data starts (-1: its local header is unreadable or not read yet)
        self._order: range | list[int] = range(0)  # members in file order (by local header offset)
        self._checked = False
        self._found: dict[int, int] | None = None  # id(member) -> its position, for read()

    def close(self) -> None:
        self.source.close()

    def _read_at(self, offset: int, n: int) -> bytes:
        return self._pread(n, offset) if 0 <= offset < self.size else b""

    def index(self) -> list[Member]:
        """Members in central directory order; no entry data is read."""
        if self._members is None:
            self._members = []
            try:
                self._central(self._members)
            except (ZipStructureError, Truncated) as error:
                self.stop("corrupt", None, str(error))
            members = self._members
            self._data_at = array("q", [-1]) * len(members)
            offsets = [m.offset or 0 for m in members]
            if any(a > b for a, b in itertools.pairwise(offsets)):
                self._order = sorted(range(len(members)), key=offsets.__getitem__)
            else:
                self._order = range(len(members))
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
        at = self._entries(members, end.cd_offset, end.cd_size)
        if self.complete and (len(members) != end.count or at != end.cd_size):
            raise ZipStructureError(f"the end record says {end.count:,} entries in {end.cd_size:,} bytes; the central"
                                    f" directory holds {len(members):,} in {at:,}")

    def _window(self, cd_offset: int, at: int, need: int) -> bytes:
        """The central directory's bytes from *at* (relative to its start), at least *need* of them."""
        data = self._read_at(cd_offset + at, max(WINDOW, need))
        if len(data) < need:
            raise Truncated(f"the archive ends inside the central directory (at byte {self.size - cd_offset:,})")
        return data

    def _entries(self, members: list[Member], cd_offset: int, cd_size: int) -> int:
        """Parse central entries from *cd_offset* until *cd_size* bytes are passed; the bytes they took."""
        buf, base, at = b"", 0, 0
        modes: dict[int, int] = {}  # one int object per distinct mode, shared by its entries
        append, codes = members.append, self._codes.append
        max_entries = self.limits.max_entries
        while at < cd_size:
            if len(members) >= max_entries:
                self.stop("bomb", None, f"more than {max_entries:,} entries (--max-entries)")
                return at
            if at - base + CENTRAL.size > len(buf):
                buf, base = self._window(cd_offset, at, CENTRAL.size), at
            i = at - base
            (sig, made_by, _, flags, method, _, _, crc, csize, size, nlen, xlen, clen, _, _, external,
             offset) = CENTRAL.unpack_from(buf, i)
            length = CENTRAL.size + nlen + xlen + clen
            if i + length > len(buf):
                buf, base, i = self._window(cd_offset, at, length), at, 0
            raw = buf[i + CENTRAL.size : i + CENTRAL.size + nlen]
            if sig != _SIG_CENTRAL or xlen or not raw.isascii():
                header = parse_central(buf, i, cd_offset + at)
                self.problems.extend(unicode_problems(header, "central directory"))
                append(header.member())
                codes(header.flags | header.method << 16 | int(header.zip64) << 32 | _GENERAL)
            else:
                name = raw.decode("ascii")
                unix = external >> 16 if (made_by >> 8) in _UNIX_HOSTS else 0
                mode = modes.setdefault(unix, unix) if unix else None
                if unix & 0o170000 in _PLAIN_KINDS:
                    kind, detail = ("dir" if name[-1:] == "/" else "file"), ""
                else:
                    kind, detail = kind_of(name, mode)
                append(Member(name, kind, size, csize, METHODS.get(method) or f"method {method}", crc, mode,
                              offset, detail))
                plain = (not flags & (FLAG_ENCRYPTED | FLAG_DESCRIPTOR) and (method == 8 or (method == 0 and
                         size == csize)) and not (size and name[-1:] == "/"))
                codes(flags | method << 16 | (0 if plain else _GENERAL))
            at += length
        return at

    def _header(self, i: int) -> Header:
        """Member *i*'s central header, rebuilt."""
        m, code = self.index()[i], self._codes[i]
        flags = code & 0xFFFF
        raw = m.name.encode("utf-8", "surrogateescape") if flags & FLAG_UTF8 else m.name.encode("cp437")
        return Header(raw, m.name, flags, (code >> 16) & 0xFFFF, m.crc or 0, m.compressed_size or 0, m.size or 0,
                      m.offset or 0, 0, bool(code >> 32 & 1), m.mode)

    def check_structure(self) -> None:
        """Each entry's local header against its central one; the entries' layout; unreadable entries."""
        if not self._checked:
            self._walk(None)

    def _walk(self, open_sink: OpenSink | None) -> None:
        """The local headers in file order, checked against the central ones; with *open_sink*, each entry's
        data pushed through its sink once its header is checked (a small plain entry's from the same read).
        Problems come in the same order either way: every structure problem, then what the data showed."""
        self._checked = True
        members, spans, flows = self.index(), list[tuple[int, int, str]](), list[Problem]()  # flows: data's
        reach, orderly, produced = 0, True, 0
        for i in self._order:
            span, data = self._check_entry(i, members[i], whole=open_sink is not None) if self.complete else (None, None)
            if span is not None:
                if span[0] < reach:  # overlapping entries (a bomb, reported below): no byte is inflated twice
                    self._data_at[i], data = -1, None
                orderly = orderly and span[0] == reach
                reach = max(reach, span[1])
                spans.append(span)
            if open_sink is not None and (sink := open_sink(members[i])) is not None:
                produced += self._read_one(i, sink, self.limits.max_size - produced, flows, data)
        if self.complete and (not orderly or reach > self.cd_offset):  # else: end to end from byte 0, no gap
            self.problems.extend(layout_problems(spans, self.cd_offset))
        if self.complete and reach < self.cd_offset and self._read_at(reach, 4) == b"PK\x03\x04":
            self.report("corrupt", None, f"a local header at byte {reach:,} that the central directory does not list:"
                        " TorchServe would unpack that entry, Python would not see it")
        self.problems.extend(flows)

    def _check_entry(self, i: int, m: Member, *, whole: bool) -> tuple[tuple[int, int, str] | None, memoryview | None]:
        """Entry *i*'s checks against its local header: its span, and, if *whole* and it is small, plain and
        stored, its data from the same read."""
        code = self._codes[i]
        if code & _GENERAL:
            header = self._header(i)
            self.problems.extend(entry_problems(header))
            return self._check_local(i, header), None
        raw, offset, size = m.name.encode("ascii"), m.offset or 0, m.size or 0
        want = LOCAL.size + len(raw)
        whole = whole and not code & 0xFFFF0000 and size <= CHUNK and m.kind == "file"  # stored: size == csize
        head = self._read_at(offset, want + size if whole else want)
        if len(head) >= want:
            sig, _, flags, method, _, _, crc, csize, lsize, nlen, xlen = LOCAL.unpack_from(head)
            if (sig == _SIG_LOCAL and not xlen and nlen == len(raw) and method == code >> 16 & 0xFFFF
                    and not flags & (FLAG_ENCRYPTED | FLAG_DESCRIPTOR)
                    and (crc, csize, lsize) == (m.crc, m.compressed_size, m.size) and head[LOCAL.size : want] == raw):
                self._data_at[i] = offset + want  # the local header is the central one's image: nothing to report
                return (offset, offset + want + csize, m.name), memoryview(head)[want:] if whole else None
        return self._check_local(i, self._header(i)), None

    def _check_local(self, i: int, central: Header) -> tuple[int, int, str] | None:
        local = self._local(central)
        if isinstance(local, str):
            self.report("corrupt", central.name, f"entry {quote(central.name)}: {local}")
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

    def _local(self, central: Header) -> Header | str:
        """The local header *central* points at, or why it cannot be parsed."""
        fixed = self._read_at(central.offset, LOCAL.size)
        extra = LOCAL.unpack_from(fixed)[9] + LOCAL.unpack_from(fixed)[10] if len(fixed) == LOCAL.size else 0
        try:
            return parse_local(fixed + self._read_at(central.offset + LOCAL.size, extra), central.offset)
        except ZipStructureError as error:
            return str(error)

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
        """Push one member's data through *sink*.

        Before :meth:`check_structure`, only this member's local header is read (to find its data; what
        it disagrees on is reported by :meth:`check_structure`), so ``inspect`` reads two headers, not all.
        """
        members = self.index()
        if self._found is None:
            self._found = {id(m): i for i, m in enumerate(members)}
        at = self._found.get(id(member))
        if at is None or members[at] is not member:
            sink.done(member, False)
            return
        if not self._checked and self._data_at[at] < 0 and self.complete:
            local = self._local(self._header(at))
            if not isinstance(local, str):
                self._data_at[at] = (member.offset or 0) + local.length
        self._read_one(at, sink, self.limits.max_size, self.problems)

    def scan(self, open_sink: OpenSink) -> list[Member]:
        """Every member's data, read in file order; members returned in central directory order.

        Unless :meth:`check_structure` ran already, the local headers are checked in the same pass.
        """
        members = self.index()
        if not self._checked:
            self._walk(open_sink)
            return members
        produced = 0
        for i in self._order:
            sink = open_sink(members[i])
            if sink is not None:
                produced += self._read_one(i, sink, self.limits.max_size - produced, self.problems)
        return members

    def _read_one(self, i: int, sink: MemberSink, budget: int, found: list[Problem],
                  data: memoryview | None = None) -> int:
        """Member *i*'s data (or *data*, already read) through *sink*, if it declares no more than *budget*
        bytes; the bytes produced. What the data shows goes to *found*."""
        member, code, data_at = self.index()[i], self._codes[i], self._data_at[i]
        size = member.size or 0
        if not code & _GENERAL and not code & 0xFFFF0000 and size <= min(CHUNK, budget) and member.kind == "file" \
                and data_at >= 0:
            return self._read_small(member, data_at, sink, found, data)  # plain and stored: one read, this thread
        header = self._header(i)
        if member.kind != "file" or data_at < 0 or not readable(header) or header.size > budget:
            sink.done(member, member.kind == "dir")  # entries past --max-size in all are reported by check_limits
            return 0
        position = [data_at]

        def read(n: int) -> bytes:
            data = self._read_at(position[0], n)
            position[0] += len(data)
            return data

        def read_into(view: memoryview) -> int:
            got = self._preadv([view], position[0])
            position[0] += got
            return got

        if header.method == 0:
            flow = copy_stored(read_into, min(header.size, header.compressed_size), sink, self.ring)
        else:
            flow = inflate(read, sink, compressed=header.compressed_size, declared=header.size,
                           budget=budget, max_ratio=self.limits.max_ratio)
        found.extend(_flow_problems(header, flow))
        sink.done(member, flow.error is None)
        return flow.produced

    def _read_small(self, member: Member, data_at: int, sink: MemberSink, found: list[Problem],
                    data: bytes | memoryview | None) -> int:
        """A plain stored member of at most one chunk: read at once (unless given) and handed over whole."""
        size = member.size or 0
        if data is None:
            data = self._read_at(data_at, size) if size else b""
        while len(data) < size and (more := self._read_at(data_at + len(data), size - len(data))):
            data = bytes(data) + more
        if data:
            sink.write(data)
        if len(data) < size:
            found.append(problem("corrupt", member.name, f"entry {quote(member.name)}: the data ends after"
                                 f" {len(data):,} of {size:,} bytes"))
        sink.done(member, len(data) == size)
        return len(data)



def _positional(source: ByteSource) -> tuple[Pread, Preadv]:
    """Reads at an offset: :func:`os.pread` on a file's descriptor, or a remote object's own range requests
    (:class:`markit.storage.ranged.RangeFile`)."""
    file: Any = source.file  # a BinaryIO, or a remote object (ranged.RangeFile)
    if hasattr(file, "pread"):
        return file.pread, file.preadv
    fd = file.fileno()
    return functools.partial(os.pread, fd), functools.partial(os.preadv, fd)


def _flow_problems(header: Header, flow: Flow) -> list[Problem]:
    """What streaming an entry's data showed against its header."""
    name = header.name
    if flow.error is not None:
        return [problem(flow.error[0], name, f"entry {quote(name)}: {flow.error[1]}")]
    if header.method != 0 and flow.consumed != header.compressed_size:
        return [problem("corrupt", name, f"entry {quote(name)}: the deflate stream ends after {flow.consumed:,} of its"
                        f" {header.compressed_size:,} stored bytes")]
    if flow.produced != header.size:
        return [problem("corrupt", name, f"entry {quote(name)}: {flow.produced:,} bytes, the header says"
                        f" {header.size:,}")]
    return []
