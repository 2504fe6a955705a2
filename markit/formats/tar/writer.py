"""Writing a ``.tar.gz`` entry by entry, everything under one top folder.

TorchServe drops the first path component of every tar entry, so the archive
holds ``<model-name>/...``. Headers come from the stdlib's ``tarfile`` (PAX
format, owner fixed to 0/0 with no names); the stream is deflated chunk by chunk (:class:`markit.codec.Deflater`) inside a gzip member whose header holds no time.
"""

from __future__ import annotations

import struct
import tarfile

from markit.engine.codec import Deflater, crc32
from markit.engine.datapass import Digest, Feed
from markit.storage.sinks import Sink

__all__ = ["TarWriter"]

BLOCK = tarfile.BLOCKSIZE  # 512: tar pads every member to this
RECORD = tarfile.RECORDSIZE  # 10240: tar pads the whole archive to this, as tarfile does
# gzip member header: deflate, no flags, mtime 0 (reproducible), no extra flags, OS unix
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"
SMALL = 64 << 10  # 64 KiB: smaller pieces (headers, padding, small files) are deflated together


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
        info = tarfile.TarInfo(name)
        info.type = kind
        info.size = size
        info.mtime = int(mtime)
        info.mode = mode
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        self._out(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))

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

    def finish(self) -> None:
        """Two zero blocks end the tar; zeros pad it to a whole record; the gzip trailer."""
        end = 2 * BLOCK
        end += -(self.written + end) % RECORD
        self._out(bytes(end))
        self._flush_pending()
        trailer = struct.pack("<II", self.crc, self.written & 0xFFFFFFFF)
        self.sink.write(self.deflater.finish(), trailer)
