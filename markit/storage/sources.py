"""Where archive bytes come from: a local file or a pipe, read in order with push-back.

A :class:`ByteSource` knows its position and, for a regular file, its size (then
skipping is a seek). Readers of every format take one; nothing here knows a format.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from typing import BinaryIO, Protocol

from markit.engine.buffers import CHUNK
from markit.errors import ArchiveError

__all__ = ["ByteSource", "Pread", "Preadv", "Readable", "Truncated", "open_file"]

Pread = Callable[[int, int], bytes]
"""``pread(n, offset)``: up to *n* bytes at *offset*."""
Preadv = Callable[[list[memoryview], int], int]
"""``preadv([view], offset)``: fill *view* from *offset*; the bytes read."""


class Readable(Protocol):
    """What a :class:`ByteSource` reads: a file or pipe, or a remote object (:mod:`markit.storage.ranged`)."""

    def read(self, n: int = -1, /) -> bytes: ...
    def seek(self, offset: int, whence: int = os.SEEK_SET, /) -> int: ...
    def close(self) -> None: ...


class Truncated(ArchiveError):
    """The bytes ended before a structure did."""


class ByteSource:
    """Bytes read in order from a file or a pipe, with push-back; knows its position."""

    def __init__(self, file: Readable | BinaryIO, *, size: int | None, owned: bool = True) -> None:
        self.file = file
        self.size = size
        """Total bytes, when the source is a regular file (then :meth:`skip` seeks)."""
        self.owned = owned
        """Whether :meth:`close` closes *file* (not stdin)."""
        self.position = 0
        self._back = b""
        self._at = 0

    def read_into(self, view: memoryview) -> int:
        """Fill *view* (up to its length); the bytes read."""
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def read(self, n: int) -> bytes:
        """Up to *n* bytes; fewer only at the end."""
        if self._at < len(self._back):
            data = self._back[self._at : self._at + n]
            self._at += len(data)
            if len(data) < n:
                data += self.file.read(n - len(data))
        else:
            data = self.file.read(n)
        self.position += len(data)
        return data

    def read_exact(self, n: int, what: str) -> bytes:
        """Exactly *n* bytes, or :class:`Truncated` naming *what* was cut."""
        data = self.read(n)
        while len(data) < n:
            more = self.read(n - len(data))
            if not more:
                raise Truncated(f"the archive ends inside {what} (at byte {self.position:,})")
            data += more
        return data

    def unread(self, data: bytes) -> None:
        """Put *data* back: the next read returns it first."""
        if data:
            self._back = data + self._back[self._at :]
            self._at = 0
            self.position -= len(data)

    def peek(self, n: int) -> bytes:
        """The next *n* bytes (fewer at the end) without consuming them."""
        data = self.read(n)
        while 0 < len(data) < n and (more := self.read(n - len(data))):
            data += more
        self.unread(data)
        return data

    def close(self) -> None:
        """Close the file, unless it is stdin."""
        if self.owned:
            self.file.close()

    def skip(self, n: int, what: str) -> None:
        """Pass over *n* bytes: a seek for a file, reads for a pipe."""
        if self.size is not None and self._at >= len(self._back):
            if self.position + n > self.size:
                raise Truncated(f"the archive ends inside {what} (at byte {self.size:,})")
            self.file.seek(n, os.SEEK_CUR)
            self.position += n
            return
        while n > 0:
            got = len(self.read_exact(min(n, CHUNK), what))
            n -= got



def open_file(path: str) -> tuple[BinaryIO, int | None]:
    """*path* opened for reading, and its size if it is a regular file."""
    try:
        file = open(path, "rb")  # noqa: SIM115 - the archive object owns and closes it
        st = os.fstat(file.fileno())
    except OSError as error:
        raise ArchiveError(f"{path}: cannot read ({error.strerror or error})") from None
    return file, st.st_size if stat.S_ISREG(st.st_mode) else None

