"""Checksums and deflate: the fastest implementation at hand, one place to choose it.

python-isal (ISA-L) computes CRC-32 at ~10 GB/s and deflates float32 weights at
~560 MB/s, where the stdlib's zlib manages 2.3 GB/s and 25 MB/s on this machine
(see docs/design.md). Deflate output depends on the library, so one is used for
every archive: isal when it imports, else zlib.
"""

from __future__ import annotations

import zlib
from typing import Protocol, cast

try:
    from isal import isal_zlib as _fast
except ImportError:  # pragma: no cover - isal is a declared dependency
    _fast = None  # type: ignore[assignment]

__all__ = ["DEFLATE_LEVEL", "FINAL_STORED_BLOCK", "Deflater", "crc32", "stored_blocks", "stored_size"]

crc32 = _fast.crc32 if _fast is not None else zlib.crc32
# isal level 2: float32 weights to 0.926 of their size at ~560 MB/s; zlib 9 reaches 0.928 at 25.
DEFLATE_LEVEL = 2 if _fast is not None else 6
STORED_BLOCK_MAX = 0xFFFF  # a deflate stored block holds at most 65,535 bytes
FINAL_STORED_BLOCK = b"\x01\x00\x00\xff\xff"  # an empty block with BFINAL set


class _Compress(Protocol):
    """What zlib's and isal's compress objects share."""

    def compress(self, data: bytes | memoryview, /) -> bytes: ...
    def flush(self, mode: int = ..., /) -> bytes: ...


class Deflater:
    """Raw deflate, a chunk at a time, never much larger than its input.

    Each chunk is compressed and sync-flushed (byte-aligned, 5 bytes). If that came
    out larger than the chunk as stored blocks, the stored blocks are sent instead:
    back-references point into the uncompressed history, which is the same however
    a chunk was sent, so the stream stays valid. On random bytes this costs 80 bytes
    per MiB, where zlib 9 adds 320 and isal alone 378; on weights it costs ~0.003%.
    """

    def __init__(self) -> None:
        module = _fast if _fast is not None else zlib
        self._compress = cast(_Compress, module.compressobj(DEFLATE_LEVEL, zlib.DEFLATED, -15))

    def compress(self, chunk: memoryview) -> list[bytes | memoryview]:
        """*chunk*, deflated or stored, ending on a byte boundary."""
        out = self.deflate(chunk)
        if len(out) > stored_size(len(chunk)):
            return stored_blocks(chunk, final=False)
        return [out]

    def deflate(self, chunk: memoryview) -> bytes:
        """*chunk* deflated and sync-flushed, however large that came out (:meth:`compress` without its check)."""
        return self._compress.compress(chunk) + self._compress.flush(zlib.Z_SYNC_FLUSH)

    def finish(self) -> bytes:
        """The stream's last block."""
        return self._compress.flush()


def stored_size(size: int) -> int:
    """Bytes *size* bytes take as stored blocks (without a final block)."""
    return size + 5 * -(-size // STORED_BLOCK_MAX)


def stored_blocks(data: memoryview, *, final: bool) -> list[bytes | memoryview]:
    """*data* as deflate stored blocks (RFC 1951 3.2.4): headers and zero-copy slices.

    A deflate stream of stored blocks is a DEFLATE entry whose data is not
    compressed: it lets a zip written to a pipe carry a data descriptor
    (which Java accepts only for DEFLATE) at a cost of 5 bytes per 64 KiB.
    With *final*, an empty last block closes the stream.
    """
    out: list[bytes | memoryview] = []
    for start in range(0, len(data), STORED_BLOCK_MAX):
        block = data[start : start + STORED_BLOCK_MAX]
        n = len(block)
        out.append(bytes((0, n & 0xFF, n >> 8, ~n & 0xFF, (~n >> 8) & 0xFF)))
        out.append(block)
    if final:
        out.append(FINAL_STORED_BLOCK)
    return out
