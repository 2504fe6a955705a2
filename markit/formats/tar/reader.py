"""Reading a tar or tar.gz, from a file or a pipe, one header after the other.

Headers are parsed by the stdlib's ``tarfile.TarInfo.frombuf`` (one 512-byte block,
no I/O), then their size is checked before anything uses it: ``frombuf`` takes ``-1``,
``+1`` and ``1_0``, and markit only plain octal (or base-256) and never a negative
number. Everything that reads is here, with limits that hold whatever the headers
declare: GNU long-name data over 64 KiB and pax data over 1 MiB is refused rather than
read into memory (``tarfile`` itself would read any size); of a pax header only the keys
markit uses are kept; a name or link target over 4,096 bytes is ``unsafe-path``, its
member left out, and never kept whole; header bytes count towards ``--max-size``, and
the gzip ratio is judged after every header as after every chunk of data. A member's
data is streamed in 1 MiB chunks, and the gzip layer stops at the end of the first gzip
member, as TorchServe's reader (commons-compress) does.
"""

from __future__ import annotations

import re
import tarfile
from dataclasses import dataclass

from markit.engine.buffers import CHUNK
from markit.errors import ArchiveError
from markit.formats.base import Archive, Member, MemberSink, OpenSink, find_root
from markit.formats.flow import INFLATE_ERRORS, inflater
from markit.model.limits import Limits
from markit.model.names import NAME_MAX_BYTES
from markit.model.numbers import parse_decimal
from markit.model.problems import quote
from markit.storage.sources import ByteSource, Truncated

__all__ = ["BLOCK", "LONG_MAX", "META_MAX", "GzipReader", "TarArchive", "parse_pax", "tar_kind"]

BLOCK = tarfile.BLOCKSIZE  # 512
META_MAX = 1 << 20  # 1 MiB: pax data markit reads; real pax headers are under 1 KiB
LONG_MAX = 64 << 10  # 64 KiB: GNU long-name data markit reads; a name over 4 KiB is refused anyway
_KEPT = NAME_MAX_BYTES + 1  # bytes of a name or pax value kept: enough to tell that it is too long
_SHOWN = 100  # characters of an over-long name or a bad value a message shows
_PAX_KEYS = (b"path", b"linkpath", b"size")  # the pax keys markit uses; GNU.sparse.* is only noted
_SPARSE = "GNU.sparse."  # the one key every GNU.sparse.* record is kept as, empty: only its presence matters
_OCTAL = re.compile(rb" *[0-7]* *")  # a size field's text, as commons-compress (TorchServe's reader) takes it
_BASE256 = (0x80, 0xFF)  # first byte of a base-256 number: positive, negative
_GNU_LONG = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)
_RATIO_FROM = 1 << 20  # the running gzip ratio is judged once 1 MiB has come out
_ZERO = bytes(BLOCK)
_META_TYPES = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE, *_GNU_LONG)
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
    """The records markit uses of a pax header (``"%d %s=%s\\n"``); ValueError if one is malformed.

    Kept: ``path``, ``linkpath`` and ``size``, each value cut at 4,097 bytes (enough to tell
    that it is too long), and whether a ``GNU.sparse.*`` key is there (as ``GNU.sparse.``,
    empty). Other keys (``mtime``, ``comment``...) are dropped: a 1 MiB header leaves a few KiB.
    """
    out: dict[str, str] = {}
    at = 0
    while at < len(data) and data[at] != 0:
        space = data.find(b" ", at, at + 21)  # at most 20 digits, then a space
        length = parse_decimal(data[at:space]) if space > at else None
        if length is None:
            raise ValueError(f"pax record at byte {at} has no length")
        end = at + length
        if end <= space or end > len(data) or data[end - 1] != 0x0A:
            raise ValueError(f"pax record at byte {at} has a wrong length")
        equals = data.find(b"=", space + 1, end - 1)
        if equals < 0:
            raise ValueError(f"pax record at byte {at} has no '='")
        key = data[space + 1 : equals]
        if key in _PAX_KEYS:
            out[key.decode()] = data[equals + 1 : min(end - 1, equals + 1 + _KEPT)].decode("utf-8", "surrogateescape")
        elif key.startswith(_SPARSE.encode()):
            out[_SPARSE] = ""
        at = end
    return out


def _too_long(text: str) -> bool:
    """Whether *text* (a name or link target, decoded with ``surrogateescape``) is over NAME_MAX_BYTES."""
    return len(text.encode("utf-8", "surrogateescape")) > NAME_MAX_BYTES


def _preview(text: str) -> str:
    """*text* quoted for a message, cut at _SHOWN characters."""
    return quote(text) if len(text) <= _SHOWN else f"{quote(text[:_SHOWN])}..."


def _no_sink(member: Member) -> MemberSink | None:
    """No sink: the data of a member left out is read past."""
    return None


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
        """Header bytes read and data bytes declared so far, held to ``--max-size``."""
        self._entries = 0
        """Members met so far, those left out included, held to ``--max-entries``."""

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
            info = self._header(block, offset)
            if info is None or not self._account(BLOCK, f"the tar header at byte {offset:,}"):
                return
            if info.type in _META_TYPES:
                self._meta(info, pending, offset)
            elif self._next_entry(info, block):
                self._entry(info, pending.take(), offset, members, open_sink)

    def _header(self, block: bytes, offset: int) -> tarfile.TarInfo | None:
        """The header in *block*, or None (reported) if it is invalid or its size is no size."""
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except (tarfile.HeaderError, ValueError, UnicodeError) as error:
            if offset == 0 and self.format == "tar.gz":
                self.stop("not-an-archive", None, "a gzip stream that does not hold a tar archive")
            else:
                self.stop("corrupt", None, f"the tar header at byte {offset:,} is invalid ({error or 'bad checksum'})")
            return None
        field = block[124:136]
        text = field.partition(b"\x00")[0]
        where = f"entry {quote(info.name)}: its tar header (at byte {offset:,})"
        if info.size < 0:
            self.stop("corrupt", None, f"{where} declares a size of {info.size:,} bytes, expected 0 or more")
            return None
        if field[0] not in _BASE256 and not _OCTAL.fullmatch(text):
            self.stop("corrupt", None, f"{where} has the size field {quote(text.decode('latin-1'))}, expected"
                      " octal digits")
            return None
        return info

    def _account(self, n: int, what: str, path: str | None = None) -> bool:
        """Count *n* more bytes (a header's, or a member's declared data) towards ``--max-size``, then judge
        the gzip ratio so far; False (reported) if reading must stop."""
        self._declared += n
        if self._declared > self.limits.max_size:
            self.stop("bomb", path, f"{what}: brings the declared total to {self._declared:,} bytes, headers"
                      f" included, past the {self.limits.max_size:,} allowed (--max-size)")
        else:
            self._check_ratio()
        return self.complete

    def _meta(self, info: tarfile.TarInfo, pending: _Pending, offset: int) -> None:
        """Read a pax or GNU long-name header into *pending*, keeping only what markit uses."""
        cap, what = (LONG_MAX, "GNU long-name header") if info.type in _GNU_LONG else (META_MAX, "pax header")
        if info.size > cap:
            self.stop("bomb", None, f"the {what} at byte {offset:,} holds {info.size:,} bytes, over the {cap:,}"
                      " markit reads")
            return
        if not self._account(info.size, f"the {what} at byte {offset:,}"):
            return
        data = self.data.read_exact(info.size, "an extended tar header")
        self.data.skip(-info.size % BLOCK, "tar padding")
        if info.type in _GNU_LONG:
            key = "path" if info.type == tarfile.GNUTYPE_LONGNAME else "linkpath"
            pending.local[key] = data.partition(b"\x00")[0][:_KEPT].decode("utf-8", "surrogateescape")
            return
        try:
            records = parse_pax(data)
        except ValueError as error:
            self.stop("corrupt", None, f"a pax header is malformed ({error})")
            return
        (pending.shared if info.type == tarfile.XGLTYPE else pending.local).update(records)

    def _next_entry(self, info: tarfile.TarInfo, block: bytes) -> bool:
        """Count one more entry towards ``--max-entries`` and read past a GNU sparse member's extension
        headers; False (reported) if reading must stop."""
        if self._entries >= self.limits.max_entries:
            self.stop("bomb", None, f"more than {self.limits.max_entries:,} entries (--max-entries)")
            return False
        self._entries += 1
        extended = info.type == tarfile.GNUTYPE_SPARSE and block[482]
        while extended and self._account(BLOCK, f"the GNU sparse header at byte {self.data.position:,}"):
            extended = self.data.read_exact(BLOCK, "a GNU sparse header")[504]
        return self.complete

    def _entry(self, info: tarfile.TarInfo, pax: dict[str, str], offset: int, members: list[Member],
               open_sink: OpenSink) -> None:
        """One member: listed and its data read, or, its name or link target over NAME_MAX_BYTES, reported
        ``unsafe-path``, left out (TorchServe could not write it either) and its data read past."""
        name, link = pax.get("path", info.name), pax.get("linkpath", info.linkname)
        shown = self._refuse_long(name, link)
        if shown is not None:
            name, link, open_sink = shown, "", _no_sink
        size = self._size(info, pax, name)
        if size is None:
            return
        member = _member(info, pax, name, size, link, offset)
        if shown is None:
            members.append(member)
        self._data(info, member, open_sink)

    def _refuse_long(self, name: str, link: str) -> str | None:
        """If *name* or *link* is over NAME_MAX_BYTES: ``unsafe-path`` reported, and the name (cut) to read
        the member past with; else None."""
        long_name = _too_long(name)
        what = "name" if long_name else "link target" if _too_long(link) else ""
        if not what:
            return None
        shown = f"{name[:_SHOWN]}..." if long_name else name
        self.report("unsafe-path", shown, f"entry {_preview(name) if long_name else quote(name)}: its {what} is over"
                    f" {NAME_MAX_BYTES:,} bytes, expected at most {NAME_MAX_BYTES:,} (no filesystem takes it)")
        return shown

    def _size(self, info: tarfile.TarInfo, pax: dict[str, str], name: str) -> int | None:
        """The member's size: its pax ``size`` if any, else its header's; None (reported) if not a number."""
        if "size" not in pax:
            return info.size
        size = parse_decimal(pax["size"])
        if size is None:
            self.stop("corrupt", name, f"entry {quote(name)}: its pax size is {_preview(pax['size'])}, expected"
                      " ASCII digits")
        return size

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
        if not self._account(size, f"entry {quote(member.name)}", member.name):
            return
        sink = open_sink(member) if member.kind == "file" else None
        if sink is None and not isinstance(self.data, GzipReader):
            self.data.skip(size + (-size % BLOCK), f"entry {quote(member.name)}")  # a seek, in a file
            return
        complete = False
        try:
            self._copy(size, sink, member.name)
            complete = True
        finally:
            if sink is not None:
                sink.done(member, complete and self.complete)
        self.data.skip(-size % BLOCK, "tar padding")

    def _copy(self, size: int, sink: MemberSink | None, name: str) -> None:
        """*size* bytes of data to *sink* (None: read past, the gzip ratio judged all along)."""
        left = size
        while left and self.complete:
            chunk = self.data.read_exact(min(CHUNK, left), f"the data of entry {quote(name)}")
            if sink is not None:
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


def _member(info: tarfile.TarInfo, pax: dict[str, str], name: str, size: int, link: str, offset: int) -> Member:
    """The member a header (and the pax records before it) describes."""
    kind, detail = tar_kind(info.type, pax)
    if kind == "dir":
        name = name.rstrip("/") + "/"
    if kind in ("symlink", "hardlink"):
        detail = link
    return Member(name, kind, size if kind != "dir" else 0, mode=info.mode & 0o7777, offset=offset, detail=detail)
