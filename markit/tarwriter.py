"""Writing a ``.tar.gz`` entry by entry, everything under one top folder.

TorchServe drops the first path component of every tar entry, so the archive
holds ``<model-name>/...``. Headers come from the stdlib's ``tarfile`` (PAX
format, owner fixed to 0/0 with no names); the data is gzipped on the way out.
"""

from __future__ import annotations

import tarfile

from markit.codec import gzipper
from markit.pump import Digest, Feed
from markit.sink import Sink

__all__ = ["TarWriter"]

BLOCK = tarfile.BLOCKSIZE  # 512: tar pads every member to this
RECORD = tarfile.RECORDSIZE  # 10240: tar pads the whole archive to this, as tarfile does


class TarWriter:
    """Entries in, tar.gz bytes out to a :class:`Sink`."""

    def __init__(self, sink: Sink, root: str, mtime: float) -> None:
        self.sink = sink
        self.root = root
        self.mtime = mtime
        self.gzip = gzipper()
        self.written = 0  # uncompressed tar bytes
        self.folders: set[str] = set()

    def _out(self, data: bytes | memoryview) -> None:
        self.written += len(data)
        out = self.gzip.compress(data)
        if out:
            self.sink.write(out)

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
        self.sink.write(self.gzip.flush())
