"""Writing a ``.tar.gz`` entry by entry, everything under one top folder.

TorchServe drops the first path component of every tar entry, so the archive
holds ``<model-name>/...``. Headers are the stdlib's ``tarfile`` PAX format, owner
fixed to 0/0 with no names: a header that fits a plain ustar block (an ASCII name
of up to 100 bytes, the usual case) is built here from a template, the same 512
bytes ``tarfile`` builds ~14 times slower, and any other comes from ``tarfile``. The
stream is deflated chunk by chunk (:class:`markit.engine.codec.Deflater`) inside a
gzip member whose header holds no time.
"""

from __future__ import annotations

import struct
import tarfile

from markit.engine.codec import Deflater, crc32
from markit.engine.datapass import Digest, Feed
from markit.storage.sinks import Sink

__all__ = ["TarWriter", "tar_header"]

BLOCK = tarfile.BLOCKSIZE  # 512: tar pads every member to this
RECORD = tarfile.RECORDSIZE  # 10240: tar pads the whole archive to this, as tarfile does
# gzip member header: deflate, no flags, mtime 0 (reproducible), no extra flags, OS unix
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"
SMALL = 64 << 10  # 64 KiB: smaller pieces (headers, padding, small files) are deflated together
_OCTAL_MAX = 8**11  # sizes and times below this fit a ustar header's 12-byte octal fields
# The fields of a ustar header after the type byte: no link name, the POSIX magic and version,
# empty owner names, no device numbers, no prefix, then the padding to 512 bytes.
_USTAR_TAIL = bytes(100) + tarfile.POSIX_MAGIC + bytes(32 + 32 + 8 + 8 + 155 + 12)
_OWNER = b"0000000\x000000000\x00"  # uid and gid 0
_CHECKSUM_FIXED = sum(b" " * 8) + sum(_USTAR_TAIL)  # the checksum field counts as spaces


def tar_header(name: str, kind: bytes, size: int, mtime: int, mode: int) -> bytes:
    """The PAX-format header ``tarfile`` writes for a member owned by 0/0 with empty owner names.

    Built directly when it is one ustar block; else (a long or non-ASCII name, a size or
    time beyond the octal fields) by ``tarfile``, with its extended header.
    """
    if kind == tarfile.DIRTYPE and not name.endswith("/"):
        name += "/"  # as tarfile names a folder
    if len(name) <= tarfile.LENGTH_NAME and name.isascii() and 0 <= size < _OCTAL_MAX and 0 <= mtime < _OCTAL_MAX:
        raw = name.encode("ascii")
        numbers = b"%07o\x00" % (mode & 0o7777) + _OWNER + b"%011o\x00%011o\x00" % (size, mtime)
        checksum = _CHECKSUM_FIXED + sum(raw) + sum(numbers) + kind[0]
        return b"".join((raw, bytes(100 - len(raw)), numbers, b"%06o\x00 " % checksum, kind, _USTAR_TAIL))
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    info.mtime = mtime
    info.mode = mode
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


class TarWriter:
    """Entries in, tar.gz bytes out to a :class:`Sink`."""

    def __init__(self, sink: Sink, root: str, mtime: float) -> None:
        self.sink = sink
        self.root = root
        self.mtime = mtime
        self.deflater = Deflater()
        self.pending = bytearray()  # headers and small pieces, deflated together
        self.crc = 0  # of the uncompressed tar stream, for the gzip trailer
        self.written = 0  # uncompressed tar bytes
        sink.write(GZIP_HEADER)
        self.folders: set[str] = set()

    def _out(self, data: bytes | memoryview) -> None:
        self.written += len(data)
        self.crc = crc32(data, self.crc)
        if len(data) < SMALL:
            self.pending += data
            if len(self.pending) < SMALL:
                return
            data = b""
        self._flush_pending()
        if data:
            self.sink.write(*self.deflater.compress(memoryview(data)))

    def _flush_pending(self) -> None:
        if self.pending:
            self.sink.write(*self.deflater.compress(memoryview(self.pending)))
            self.pending = bytearray()

    def _header(self, name: str, kind: bytes, size: int, mtime: float, mode: int) -> None:
        self._out(tar_header(name, kind, size, int(mtime), mode))

    def _folders_for(self, name: str) -> None:
        parts = f"{self.root}/{name}".split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            folder = "/".join(parts[:depth])
            if folder not in self.folders:
                self.folders.add(folder)
                self._header(folder + "/", tarfile.DIRTYPE, 0, self.mtime, 0o755)

    def _pad(self, size: int) -> None:
        if size % BLOCK:
            self._out(bytes(BLOCK - size % BLOCK))

    def add(self, name: str, size: int, mtime: float, mode: int, method: str, feed: Feed) -> Digest:
        """One member of *size* bytes whose data *feed* supplies (*method* is always gzip)."""
        self._folders_for(name)
        self._header(f"{self.root}/{name}", tarfile.REGTYPE, size, mtime, mode)
        digest = feed(self._out)
        self._pad(size)
        return digest

    def add_whole(self, name: str, mtime: float, mode: int, method: str, data: bytes | memoryview,
                  digest: Digest) -> None:
        """One member whose bytes are all in *data* (*digest* is theirs): the same bytes :meth:`add` writes."""
        size = len(data)
        self._folders_for(name)
        self._header(f"{self.root}/{name}", tarfile.REGTYPE, size, mtime, mode)
        if size:
            self._out(data)
        self._pad(size)

    def finish(self) -> None:
        """Two zero blocks end the tar; zeros pad it to a whole record; the gzip trailer."""
        end = 2 * BLOCK
        end += -(self.written + end) % RECORD
        self._out(bytes(end))
        self._flush_pending()
        trailer = struct.pack("<II", self.crc, self.written & 0xFFFFFFFF)
        self.sink.write(self.deflater.finish(), trailer)
