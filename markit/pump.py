"""Reading a source file once: each chunk is hashed, checksummed and handed on.

The one loop every writer shares. SHA-256 (for the record) and CRC-32 (for
zip and gzip) are computed from the same buffer the writer consumes, so each
source byte is read from disk once, into a fixed-size buffer.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from markit.codec import crc32
from markit.errors import InputError

__all__ = ["CHUNK", "Digest", "Feed", "digest_bytes", "pump"]

CHUNK = 1 << 20  # 1 MiB: per-chunk Python overhead is under 1% of copy time, and it fits L2
# Files above this hash on a worker thread; below, handing a chunk over costs more than it saves.
THREADED_FROM = 4 * CHUNK


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

    SHA-256 of a chunk runs on a worker thread while this thread computes its
    CRC-32 and hands it to *consume* (hashlib and isal release the GIL), so both
    cores work and the wall time is about that of the slower of the two.

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
    sha = hashlib.sha256()
    crc = 0
    done = 0
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    hasher = _hasher() if size > THREADED_FROM else None
    while n := _read(fd, buffer, path):
        done += n
        if done > size:
            break
        chunk = view[:n]
        hashed = hasher.submit(sha.update, chunk) if hasher else None
        if hashed is None:
            sha.update(chunk)
        crc = crc32(chunk, crc)
        consume(chunk)
        if hashed is not None:
            hashed.result()  # the buffer is reused by the next read
        if progress is not None:
            progress(n)
    return Digest(sha.hexdigest(), crc, done)


_pool: list[ThreadPoolExecutor] = []


def _hasher() -> ThreadPoolExecutor:
    """One worker thread for SHA-256, started on first use and kept for the process."""
    if not _pool:
        _pool.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="markit-sha256"))
    return _pool[0]


def digest_bytes(data: bytes, consume: Consumer) -> Digest:
    """The same as :func:`pump`, for bytes already in memory (generated files)."""
    view = memoryview(data)
    consume(view)
    return Digest(hashlib.sha256(view).hexdigest(), crc32(view), len(view))
