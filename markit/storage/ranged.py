"""A remote object's bytes by range requests: at random with a read-ahead (inspect), or in one pass (verify).

:class:`RangeFile` answers ``pread(n, offset)`` from a few cached spans, fetching a miss and
the :data:`READAHEAD` bytes after it in one request, never a byte it holds already: inspect
of a zip reads its first bytes (format, and ``MAR-INF/MANIFEST.json``, which markit writes
first), the tail (end records, central directory) and perhaps ``MAR-INF/RECORD``; a few
requests, whatever the archive's size. :class:`StreamFile` reads from the start to the end in
:data:`BLOCK` requests, the next one fetched while the last is consumed, so every byte is
fetched once and memory holds two blocks. Both count requests and bytes (:class:`Fetched`), and both
read one version of the object: the first response's, which every later request asks for
(:mod:`markit.storage.pinned`), so an object replaced mid-read is an error, never a mixed archive.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from markit.storage.pinned import Changed, fetch
from markit.storage.remote import RemoteError, remote_error

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

__all__ = ["BLOCK", "READAHEAD", "Fetched", "RangeFile", "StreamFile"]

READAHEAD = 256 << 10  # 256 KiB: a zip's first entry (the manifest) and its neighbours in one request
CACHE = 16 << 20  # 16 MiB of spans kept: the tail with a central directory of ~100,000 entries
BLOCK = 8 << 20  # 8 MiB per request in one pass: ~1 ms of request overhead per block is < 2% at 500 MB/s


@dataclass
class Fetched:
    """What was asked of the store: requests and bytes, and a callback per request (a progress bar)."""

    requests: int = 0
    bytes: int = 0
    on_fetch: Callable[[int], None] | None = None

    def count(self, n: int) -> None:
        self.requests += 1
        self.bytes += n
        if self.on_fetch is not None:
            self.on_fetch(n)


class _Remote:
    """A remote object of known size and the one call that fetches a range of it."""

    def __init__(self, fs: AbstractFileSystem, path: str, url: str, size: int, fetched: Fetched | None) -> None:
        self.fs, self.path, self.url, self.size = fs, path, url, size
        self.fetched = fetched or Fetched()
        self.version: str | None = None  # what the first response named (ETag, generation): later ones must match
        self.closed = False

    def _fetch(self, start: int, end: int) -> bytes:
        """Bytes ``[start, end)``, in one request, of the version the first request read
        (:mod:`markit.storage.pinned`); :class:`RemoteError` if the store fails, sends other bytes, or the object
        changed since."""
        try:
            data, version = fetch(self.fs, self.path, start, end, self.version)
        except Changed as error:
            raise RemoteError(f"{self.url}: changed while being read ({error})") from None
        except Exception as error:  # noqa: BLE001 - backends raise their own types
            raise remote_error(self.url, error) from None
        if self.version is None:  # the first request (later ones are made after it: one ahead at most)
            self.version = version
        self.fetched.count(len(data))
        if len(data) != end - start:
            raise RemoteError(f"{self.url}: asked for bytes {start:,}-{end - 1:,}, the server sent {len(data):,}"
                              " bytes (does it ignore Range requests, or did the object change?)")
        return data

    def close(self) -> None:
        self.closed = True


class RangeFile(_Remote):
    """Random reads of a remote object, from cached spans fetched with a read-ahead; also a file in order."""

    def __init__(self, fs: AbstractFileSystem, path: str, url: str, size: int, fetched: Fetched | None = None, *,
                 readahead: int = READAHEAD, cache: int = CACHE) -> None:
        super().__init__(fs, path, url, size, fetched)
        self.readahead, self.cache = readahead, cache
        self._spans: list[tuple[int, bytes]] = []  # (start, bytes), most recently used last
        self._position = 0

    def pread(self, n: int, offset: int) -> bytes:
        """Up to *n* bytes at *offset* (fewer only at the end)."""
        end = min(offset + n, self.size)
        if offset >= end:
            return b""
        for start, data in reversed(self._spans):
            if start <= offset and end <= start + len(data):
                return data[offset - start : end - start]
        out, at = bytearray(), offset
        while at < end:
            start, data = self._span_at(at, end)
            piece = data[at - start : end - start]
            out += piece
            at += len(piece)
        return bytes(out)

    def preadv(self, buffers: list[memoryview], offset: int) -> int:
        """Fill the one buffer given from *offset*; the bytes read."""
        (view,) = buffers
        data = self.pread(len(view), offset)
        view[: len(data)] = data
        return len(data)

    def _span_at(self, at: int, end: int) -> tuple[int, bytes]:
        """The cached span holding byte *at*, fetched (up to *end* and the read-ahead past it) if none does."""
        for i, (start, data) in enumerate(self._spans):
            if start <= at < start + len(data):
                self._spans.append(self._spans.pop(i))
                return start, data
        following = min((s for s, _ in self._spans if s > at), default=self.size)
        stop = min(max(end, at + self.readahead), following, self.size)
        span = (at, self._fetch(at, stop))
        self._spans.append(span)
        held = sum(len(d) for _, d in self._spans)
        while held > self.cache and len(self._spans) > 1:
            held -= len(self._spans.pop(0)[1])
        return span

    def read(self, n: int = -1) -> bytes:
        """The next bytes in order (a :class:`~markit.storage.sources.ByteSource` reads the head this way)."""
        data = self.pread(self.size - self._position if n < 0 else n, self._position)
        self._position += len(data)
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self.size}[whence]
        self._position = base + offset
        return self._position


class StreamFile(_Remote):
    """A remote object read once from its start, :data:`BLOCK` bytes per request, one request ahead."""

    def __init__(self, fs: AbstractFileSystem, path: str, url: str, size: int, fetched: Fetched | None = None, *,
                 block: int = BLOCK) -> None:
        super().__init__(fs, path, url, size, fetched)
        self.block = block
        self._buffer = memoryview(b"")
        self._next_at = 0  # where the next block starts
        self._pool: ThreadPoolExecutor | None = None
        self._ahead: Future[bytes] | None = None

    def _advance(self) -> None:
        """Make the next block the buffer, and ask for the one after it."""
        if self._ahead is not None:
            data = self._ahead.result()
            self._ahead = None
        elif self._next_at < self.size:
            data = self._fetch(self._next_at, min(self._next_at + self.block, self.size))
        else:
            data = b""
        self._buffer = memoryview(data)
        self._next_at += len(data)
        if self._next_at < self.size:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="markit-fetch")
            self._ahead = self._pool.submit(self._fetch, self._next_at, min(self._next_at + self.block, self.size))

    def read(self, n: int = -1) -> bytes:
        """Up to *n* bytes (fewer only at the end)."""
        if not self._buffer:
            self._advance()
        n = len(self._buffer) if n < 0 else n
        data = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return bytes(data)

    def readinto(self, view: memoryview) -> int:
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = os.SEEK_CUR) -> int:
        """Forward from here only (``SEEK_CUR``): what is skipped past the buffered block is never fetched."""
        if whence != os.SEEK_CUR or offset < 0:
            raise OSError(f"{self.url}: read in one pass, forward only")
        if offset <= len(self._buffer):
            self._buffer = self._buffer[offset:]
        else:
            target = self._next_at + offset - len(self._buffer)
            self._drop_ahead()
            self._buffer, self._next_at = memoryview(b""), min(target, self.size)
        return self._next_at - len(self._buffer)

    def _drop_ahead(self) -> None:
        if self._ahead is not None:
            if not self._ahead.cancel():  # already running: let it finish, and drop what it fetched
                try:
                    self._ahead.result()
                except RemoteError:
                    pass
            self._ahead = None

    def close(self) -> None:
        self._drop_ahead()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        super().close()
