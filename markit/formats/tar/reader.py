"""Reading a tar or tar.gz, from a file or a pipe, one header after the other.

Headers are parsed by the stdlib's ``tarfile.TarInfo.frombuf`` (one 512-byte block,
no I/O); everything that reads is here, with limits: pax and GNU long-name data over
1 MiB is refused rather than read into memory (``tarfile`` itself would read any size),
a member's data is streamed in 1 MiB chunks, and the gzip layer stops at the end of the
first gzip member, as TorchServe's reader (commons-compress) does.
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass

from markit.engine.buffers import CHUNK
from markit.errors import ArchiveError
from markit.formats.base import Archive, Member, MemberSink, OpenSink, find_root
from markit.formats.flow import INFLATE_ERRORS, inflater
from markit.model.limits import Limits
from markit.model.problems import quote
from markit.storage.sources import ByteSource, Truncated

__all__ = ["BLOCK", "META_MAX", "GzipReader", "TarArchive", "parse_pax", "tar_kind"]

BLOCK = tarfile.BLOCKSIZE  # 512
META_MAX = 1 << 20  # 1 MiB: pax and GNU long-name data markit reads; real ones are under 1 KiB
_RATIO_FROM = 1 << 20  # the running gzip ratio is judged once 1 MiB has come out
_ZERO = bytes(BLOCK)
_META_TYPES = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.GNUTYPE_LONGNAME,
               tarfile.GNUTYPE_LONGLINK)
_FILE_TYPES = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)
# Types whose size field tarfile ignores (no data follows); every other type's data is skipped.
_NO_DATA_TYPES = (tarfile.LNKTYPE, tarfile.SYMTYPE, tarfile.DIRTYPE, tarfile.FIFOTYPE, tarfile.CHRTYPE,
                  tarfile.BLKTYPE)
_SPECIAL = {tarfile.CHRTYPE: "a character device", tarfile.BLKTYPE: "a block device", tarfile.FIFOTYPE: "a FIFO",
            tarfile.GNUTYPE_SPARSE: "a GNU sparse file"}


class GzipError(ArchiveError):
    """The gzip layer is damaged."""


class GzipReader:
    """The decompressed bytes of a source's first gzip member."""

    def __init__(self, source: ByteSource) -> None:
        self.source = source
        self.position = 0
        """Decompressed bytes delivered."""
        self._d = inflater(31)
        self._buffer = b""
        self._at = 0

    def read(self, n: int) -> bytes:
        """Up to *n* bytes; fewer only at the end of the gzip member."""
        while len(self._buffer) - self._at < n and not self._d.eof:
            self._fill()
        data = self._buffer[self._at : self._at + n]
        self._at += len(data)
        self.position += len(data)
        return data

    def _fill(self) -> None:
        data = self._d.unconsumed_tail or self.source.read(CHUNK)
        try:
            out = self._d.decompress(data, CHUNK)
        except INFLATE_ERRORS as error:
            raise GzipError(f"the gzip data is damaged at byte {self.source.position:,} ({error})") from None
        if not data and not out and not self._d.eof:
            raise Truncated(f"the gzip stream ends early, after {self.source.position:,} bytes (truncated)")
        self._buffer = self._buffer[self._at :] + out
        self._at = 0

    def read_exact(self, n: int, what: str) -> bytes:
        """Exactly *n* bytes, or :class:`Truncated`."""
        data = self.read(n)
        if len(data) < n:
            raise Truncated(f"the archive ends inside {what} (at byte {self.position:,} of the tar)")
        return data

    def skip(self, n: int, what: str) -> None:
        """Read past *n* bytes."""
        while n > 0:
            n -= len(self.read_exact(min(n, CHUNK), what))


def parse_pax(data: bytes) -> dict[str, str]:
    """The ``key=value`` records of a pax header (``"%d %s=%s\\n"``); ValueError if malformed."""
    out: dict[str, str] = {}
    at = 0
    while at < len(data) and data[at] != 0:
        space = data.find(b" ", at)
        if space < 0 or not data[at:space].isdigit():
            raise ValueError(f"pax record at byte {at} has no length")
        end = at + int(data[at:space])
        if end <= space or end > len(data) or data[end - 1] != 0x0A:
            raise ValueError(f"pax record at byte {at} has a wrong length")
        key, equals, value = data[space + 1 : end - 1].partition(b"=")
        if not equals:
            raise ValueError(f"pax record at byte {at} has no '='")
        out[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        at = end
    return out


def tar_kind(kind: bytes, pax: dict[str, str]) -> tuple[str, str]:
    """(``file``/``dir``/``symlink``/``hardlink``/``special``, what a special entry is) for a tar type."""
    if kind in _FILE_TYPES:
        if any(key.startswith("GNU.sparse.") for key in pax):
            return "special", "a GNU sparse file"
        return "file", ""
    if kind == tarfile.DIRTYPE:
        return "dir", ""
    if kind == tarfile.SYMTYPE:
        return "symlink", ""
    if kind == tarfile.LNKTYPE:
        return "hardlink", ""
    return "special", _SPECIAL.get(kind, f"a tar entry of type {kind!r}")


@dataclass
class _Pending:
    """Extended header values waiting for the member they describe."""

    local: dict[str, str]
    shared: dict[str, str]

    def take(self) -> dict[str, str]:
        merged = {**self.shared, **self.local}
        self.local = {}
        return merged


class TarArchive(Archive):
    """A tar or tar.gz read in one pass; the top folder is found once every name is known."""

    def __init__(self, source: ByteSource, label: str, limits: Limits, *, gzipped: bool) -> None:
        super().__init__(label, limits)
        self.format = "tar.gz" if gzipped else "tar"
        self.source = source
        self.data: GzipReader | ByteSource = GzipReader(source) if gzipped else source
        self.stream_size = source.size if gzipped else None
        self._declared = 0

    def close(self) -> None:
        self.source.close()

    def scan(self, open_sink: OpenSink) -> list[Member]:
        """Every member in order; each file's data pushed through its sink."""
        members: list[Member] = []
        try:
            self._walk(members, open_sink)
        except ArchiveError as error:  # Truncated, GzipError
            self.stop("corrupt", None, str(error))
        self.root = find_root(members)
        return members

    def _walk(self, members: list[Member], open_sink: OpenSink) -> None:
        pending = _Pending({}, {})
        while self.complete:
            offset = self.data.position
            block = self.data.read(BLOCK)
            if len(block) < BLOCK:
                raise Truncated("the tar ends without its end-of-archive marker (truncated)" if not block
                                else f"the archive ends inside a tar header (at byte {offset:,})")
            if block == _ZERO:
                self._finish()
                return
            info = self._header(block, offset, first=not members and not pending.local)
            if info is None:
                return
            if info.type in _META_TYPES:
                self._meta(info, pending)
                continue
            if len(members) >= self.limits.max_entries:
                self.stop("bomb", None, f"more than {self.limits.max_entries:,} entries (--max-entries)")
                return
            if info.type == tarfile.GNUTYPE_SPARSE and block[482]:
                while self.data.read_exact(BLOCK, "a GNU sparse header")[504]:
                    pass
            member = self._member(info, pending.take(), offset)
            if member is not None:
                members.append(member)
                self._data(info, member, open_sink)

    def _header(self, block: bytes, offset: int, *, first: bool) -> tarfile.TarInfo | None:
        try:
            return tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except (tarfile.HeaderError, ValueError, UnicodeError) as error:
            if first and self.format == "tar.gz":
                self.stop("not-an-archive", None, "a gzip stream that does not hold a tar archive")
            else:
                self.stop("corrupt", None, f"the tar header at byte {offset:,} is invalid ({error or 'bad checksum'})")
            return None

    def _meta(self, info: tarfile.TarInfo, pending: _Pending) -> None:
        if info.size > META_MAX:
            self.stop("bomb", None, f"an extended tar header of {info.size:,} bytes, over the {META_MAX:,} markit"
                      " reads")
            return
        data = self.data.read_exact(info.size, "an extended tar header")
        self.data.skip(-info.size % BLOCK, "tar padding")
        if info.type in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK):
            key = "path" if info.type == tarfile.GNUTYPE_LONGNAME else "linkpath"
            pending.local[key] = data.split(b"\x00", 1)[0].decode("utf-8", "surrogateescape")
            return
        try:
            records = parse_pax(data)
        except ValueError as error:
            self.stop("corrupt", None, f"a pax header is malformed ({error})")
            return
        (pending.shared if info.type == tarfile.XGLTYPE else pending.local).update(records)

    def _member(self, info: tarfile.TarInfo, pax: dict[str, str], offset: int) -> Member | None:
        name = pax.get("path", info.name)
        size = info.size
        if "size" in pax:
            if not pax["size"].isdigit():
                self.stop("corrupt", name, f"entry {quote(name)}: its pax size {pax['size']!r} is not a number")
                return None
            size = int(pax["size"])
        kind, detail = tar_kind(info.type, pax)
        if kind == "dir":
            name = name.rstrip("/") + "/"
        if kind in ("symlink", "hardlink"):
            detail = pax.get("linkpath", info.linkname)
        return Member(name, kind, size if kind != "dir" else 0, mode=info.mode, offset=offset, detail=detail)

    def _data(self, info: tarfile.TarInfo, member: Member, open_sink: OpenSink) -> None:
        """Stream (or skip) the member's data; tarfile's rule: only files and unknown types have data."""
        size = member.size or 0
        if info.type in _NO_DATA_TYPES:
            if size and member.kind != "dir":
                self.report("corrupt", member.name, f"entry {quote(member.name)}: {member.detail or member.kind}"
                            f" declares {size:,} bytes of data; readers disagree on whether they follow")
            sink = open_sink(member) if member.kind == "dir" else None
            if sink is not None:
                sink.done(member, True)
            return
        self._declared += size
        if self._declared > self.limits.max_size:
            self.stop("bomb", member.name, f"entry {quote(member.name)}: brings the declared total to"
                      f" {self._declared:,} bytes, past the {self.limits.max_size:,} allowed (--max-size)")
            return
        sink = open_sink(member) if member.kind == "file" else None
        if sink is None:
            self.data.skip(size + (-size % BLOCK), f"entry {quote(member.name)}")
            self._check_ratio()
            return
        complete = False
        try:
            self._copy(size, sink, member.name)
            complete = True
        finally:
            sink.done(member, complete and self.complete)
        self.data.skip(-size % BLOCK, "tar padding")

    def _copy(self, size: int, sink: MemberSink, name: str) -> None:
        left = size
        while left and self.complete:
            chunk = self.data.read_exact(min(CHUNK, left), f"the data of entry {quote(name)}")
            sink.write(chunk)
            left -= len(chunk)
            self._check_ratio()

    def _check_ratio(self) -> None:
        produced, consumed = self.data.position, self.source.position
        if isinstance(self.data, GzipReader) and produced > _RATIO_FROM and produced > self.limits.max_ratio * consumed:
            self.stop("bomb", None, f"the gzip stream inflates over {self.limits.max_ratio:g} times its size"
                      f" ({produced:,} bytes from {consumed:,}; --max-ratio)")

    def _finish(self) -> None:
        """After the end-of-archive marker: read the rest of the gzip member, so its CRC is checked."""
        if not isinstance(self.data, GzipReader):
            return
        while self.complete and self.data.read(CHUNK):
            self._check_ratio()
            if self.data.position > self.limits.max_size:
                self.stop("bomb", None, f"the gzip stream holds over {self.limits.max_size:,} bytes (--max-size)")
