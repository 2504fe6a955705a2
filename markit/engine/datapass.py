"""The one data pass: each byte read once, CRC-32 and SHA-256 computed, a consumer fed in order.

``create`` (a source file into a writer), ``verify`` (an archive's members into the
checks) and ``unpack`` (into files) all move bytes the same way: a
:class:`DataStream` takes one member's chunks in order, computes CRC-32 on the
calling thread, and, once the member is large enough for threads to pay, hands
SHA-256 and the consumer each to its own single-thread worker (hashlib, isal,
deflate and ``os.write`` release the GIL), so both cores work while the caller
reads the next chunk. At most ``RING - 1`` chunks are held by the workers, so a
chunk read into a :class:`~markit.engine.buffers.BufferRing` is always consumed
before its buffer is read into again. :func:`pump` is the reading end for a
file on disk; :func:`read_whole` reads a file of up to one chunk with one call, for
a writer that wants a small member's bytes and digest before it writes its header.
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from markit.engine.buffers import CHUNK, RING, BufferRing
from markit.engine.codec import crc32
from markit.errors import InputError

__all__ = ["THREADED_FROM", "WHOLE_MAX", "Consumer", "DataStream", "Digest", "Feed", "counter", "digest_of", "pump",
           "read_whole"]

# Members above this hash and consume on the workers; below, handing a chunk over (~20 us) costs
# more than it saves, and everything runs on the calling thread.
THREADED_FROM = 4 * CHUNK
# Files up to this size are read whole (read_whole): one chunk, so its bytes are in memory at once.
WHOLE_MAX = CHUNK

Chunk = bytes | memoryview
Consumer = Callable[[memoryview], None]


@dataclass(frozen=True)
class Digest:
    """What passing a member's bytes once yields."""

    sha256: str
    """Hex SHA-256 of the bytes, or "" when the stream was asked not to compute it."""
    crc: int
    """CRC-32 of the bytes."""
    size: int
    """Bytes passed."""


Feed = Callable[[Consumer], Digest]
"""Runs one member's data through a consumer and returns its digest: what writers take."""


class DataStream:
    """One member's bytes, in order: CRC-32 here; SHA-256 and the consumer on workers when large.

    *size* is the member's declared size (None: unknown, so treated as large). Errors of
    the consumer surface from a later :meth:`write` or from :meth:`finish`.
    """

    def __init__(self, *, size: int | None, consume: Consumer | None = None, sha: bool = True) -> None:
        self.size = 0
        self.crc = 0
        self._sha = hashlib.sha256() if sha else None
        self._consume = consume
        self._threaded = size is None or size > THREADED_FROM
        self._pending: deque[tuple[Future[None], ...]] = deque()

    def write(self, chunk: Chunk) -> None:
        """The next chunk of the member. A ring buffer's chunk must stay intact for ``RING - 1`` more reads."""
        view = memoryview(chunk)
        if self._threaded:
            self._hand_over(view)
        else:
            if self._sha is not None:
                self._sha.update(view)
            if self._consume is not None:
                self._consume(view)
        self.crc = crc32(view, self.crc)
        self.size += len(view)

    def _hand_over(self, view: memoryview) -> None:
        if len(self._pending) >= RING - 1:
            _result(self._pending.popleft())
        hasher, writer = _workers()
        futures: tuple[Future[None], ...] = ()
        if self._sha is not None:
            futures += (hasher.submit(self._sha.update, view),)
        if self._consume is not None:
            futures += (writer.submit(self._consume, view),)
        self._pending.append(futures)

    def finish(self) -> Digest:
        """Wait for the workers (raising the consumer's first error) and return the digest."""
        while self._pending:
            _result(self._pending.popleft())
        return Digest(self._sha.hexdigest() if self._sha is not None else "", self.crc, self.size)

    def abandon(self) -> None:
        """Let the workers finish with the chunks they hold, ignoring their errors (another error is on its way)."""
        while self._pending:
            wait(self._pending.popleft())


def _result(futures: tuple[Future[None], ...]) -> None:
    for future in futures:
        future.result()


_pool: list[ThreadPoolExecutor] = []


def _workers() -> tuple[ThreadPoolExecutor, ThreadPoolExecutor]:
    """Two single-thread workers (SHA-256, the consumer), started on first use and kept: each keeps its order."""
    if not _pool:
        _pool.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="markit-sha256"))
        _pool.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="markit-write"))
    return _pool[0], _pool[1]


def pump(path: str, size: int, consume: Consumer, progress: Callable[[int], None] | None = None,
         ring: BufferRing | None = None) -> Digest:
    """Read the file at *path*, expecting *size* bytes, into *ring*'s buffers; pass each chunk to *consume*.

    :class:`InputError` if the file is missing or its size is not *size*: a file that
    changes while it is archived would give an archive whose record and headers lie.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as error:
        raise InputError(f"{path}: cannot open ({error.strerror})") from None
    stream = DataStream(size=size, consume=consume)
    try:
        _read_file(fd, path, size, stream, progress, ring or BufferRing())
        digest = stream.finish()
    except BaseException:
        stream.abandon()
        raise
    finally:
        os.close(fd)
    if digest.size != size:
        raise InputError(f"{path}: changed while it was archived (scanned {size} bytes, read {digest.size}+)")
    return digest


def _read_file(fd: int, path: str, size: int, stream: DataStream, progress: Callable[[int], None] | None,
               ring: BufferRing) -> None:
    def read_into(view: memoryview) -> int:
        try:
            return os.readv(fd, [view])
        except OSError as error:  # only reading: a failing consumer raises its own error
            raise InputError(f"{path}: cannot read ({error.strerror})") from None

    while chunk := ring.fill(read_into, CHUNK):
        if stream.size + len(chunk) > size:
            stream.size += len(chunk)  # it grew: reported by the caller, nothing more is passed on
            return
        stream.write(chunk)
        if progress is not None:
            progress(len(chunk))


def digest_of(data: bytes | memoryview) -> Digest:
    """The digest of bytes already in memory (generated files, a file read whole)."""
    return Digest(hashlib.sha256(data).hexdigest(), crc32(data), len(data))


def read_whole(path: str, size: int, buffer: memoryview) -> tuple[memoryview, Digest]:
    """The file at *path*, scanned at *size* bytes (at most :data:`WHOLE_MAX`), read into *buffer* and its digest.

    One ``open``, one ``readv`` of *size* + 1 bytes (a regular file reads short only at its
    end, so one call both reads it and shows it did not grow), one ``close``; CRC-32 and
    SHA-256 on the calling thread. *buffer* (a view of at least *size* + 1 bytes, made once)
    is reused by the caller: the view returned is valid until the next read into it.
    :class:`InputError` as for :func:`pump`.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as error:
        raise InputError(f"{path}: cannot open ({error.strerror})") from None
    try:
        got = os.readv(fd, [buffer[: size + 1]])
        while 0 < got < size:  # a short read before the end: rare, but allowed
            more = os.readv(fd, [buffer[got : size + 1]])
            if not more:
                break
            got += more
    except OSError as error:
        raise InputError(f"{path}: cannot read ({error.strerror})") from None
    finally:
        os.close(fd)
    if got != size:
        raise InputError(f"{path}: changed while it was archived (scanned {size} bytes, read {got}+)")
    data = buffer[:size]
    return data, Digest(hashlib.sha256(data).hexdigest(), crc32(data), size)


def counter(progress: Callable[[int, int], None] | None, total: int) -> Callable[[int], None] | None:
    """A function to call with each chunk's size that reports (bytes so far, *total*) to *progress*."""
    if progress is None:
        return None
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        progress(done, total)

    return advance
