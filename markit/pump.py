"""Reading a source file once: each chunk is hashed, checksummed and handed on.

The one loop every writer shares. SHA-256 (for the record) and CRC-32 (for
zip and gzip) are computed from the same buffer the writer consumes, so each
source byte is read from disk once, into a fixed-size buffer.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from markit.codec import crc32
from markit.errors import InputError

__all__ = ["CHUNK", "Digest", "Feed", "digest_bytes", "pump"]

CHUNK = 1 << 20  # 1 MiB: per-chunk Python overhead is under 1% of copy time, and it fits L2
# Files above this are read into a ring of RING buffers, hashed and written on worker threads;
# below, handing chunks over costs more than it saves.
THREADED_FROM = 4 * CHUNK
RING = 4  # chunks in flight: enough that neither worker waits on the reader; 4 MiB of memory


@dataclass(frozen=True)
class Digest:
    """What reading a file once yields."""

    sha256: str
    """Hex SHA-256 of the bytes read."""
    crc: int
    """CRC-32 of the bytes read."""
    size: int
    """Bytes read."""


Consumer = Callable[[memoryview], None]
Feed = Callable[[Consumer], "Digest"]
"""Runs one member's data through a consumer and returns its digest: what writers take."""


def pump(path: str, size: int, consume: Consumer, progress: Callable[[int], None] | None = None) -> Digest:
    """Read *path*, expecting *size* bytes; pass each chunk to *consume*.

    Files over 4 MiB go through :func:`_pump_threaded`: SHA-256 and *consume* run
    on worker threads (hashlib, isal and ``os.write`` release the GIL) while this
    thread reads and computes CRC-32, so both cores work.

    :class:`InputError` if the file is missing or its size is not *size*:
    a file that changes while it is archived would give an archive whose
    record and headers lie.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as error:
        raise InputError(f"{path}: cannot open ({error.strerror})") from None
    try:
        digest = _pump_fd(fd, path, size, consume, progress)
    finally:
        os.close(fd)
    if digest.size != size:
        raise InputError(f"{path}: changed while it was archived (scanned {size} bytes, read {digest.size}+)")
    return digest


def _read(fd: int, buffer: bytearray, path: str) -> int:
    try:
        return os.readv(fd, [buffer])
    except OSError as error:  # only reading: a failing consumer raises its own error
        raise InputError(f"{path}: cannot read ({error.strerror})") from None


def _pump_fd(fd: int, path: str, size: int, consume: Consumer, progress: Callable[[int], None] | None) -> Digest:
    if size > THREADED_FROM:
        return _pump_threaded(fd, path, size, consume, progress)
    sha = hashlib.sha256()
    crc = 0
    done = 0
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    while n := _read(fd, buffer, path):
        done += n
        if done > size:
            break
        chunk = view[:n]
        sha.update(chunk)
        crc = crc32(chunk, crc)
        consume(chunk)
        if progress is not None:
            progress(n)
    return Digest(sha.hexdigest(), crc, done)


def _pump_threaded(fd: int, path: str, size: int, consume: Consumer, progress: Callable[[int], None] | None) -> Digest:
    """Read into a ring of buffers; SHA-256 and *consume* each run on their own worker.

    Each worker takes its chunks in order (one thread each), and a buffer is read
    into again only once both workers are done with it. This thread reads and
    computes CRC-32; writing (page-cache copies, deflate) no longer waits behind it.
    """
    sha = hashlib.sha256()
    crc = 0
    done = 0
    ring = [bytearray(CHUNK) for _ in range(RING)]
    pending: list[tuple[Future[None], ...]] = [() for _ in range(RING)]
    hasher, writer = _workers()
    i = 0
    try:
        while True:
            _wait(pending[i])
            n = _read(fd, ring[i], path)
            done += n
            if n == 0 or done > size:
                break
            chunk = memoryview(ring[i])[:n]
            pending[i] = (hasher.submit(sha.update, chunk), writer.submit(consume, chunk))
            crc = crc32(chunk, crc)
            if progress is not None:
                progress(n)
            i = (i + 1) % RING
    except BaseException:
        for futures in pending:  # let the workers finish with the buffers; the first error wins
            wait(futures)
        raise
    for futures in pending:
        _wait(futures)
    return Digest(sha.hexdigest(), crc, done)


def _wait(futures: tuple[Future[None], ...]) -> None:
    for future in futures:
        future.result()


_pool: list[ThreadPoolExecutor] = []


def _workers() -> tuple[ThreadPoolExecutor, ThreadPoolExecutor]:
    """Two single-thread workers (SHA-256, the consumer), started on first use and kept."""
    if not _pool:
        _pool.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="markit-sha256"))
        _pool.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="markit-write"))
    return _pool[0], _pool[1]


def digest_bytes(data: bytes, consume: Consumer) -> Digest:
    """The same as :func:`pump`, for bytes already in memory (generated files)."""
    view = memoryview(data)
    consume(view)
    return Digest(hashlib.sha256(view).hexdigest(), crc32(view), len(view))
