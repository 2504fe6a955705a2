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

__all__ = ["DEFLATE_LEVEL", "FINAL_STORED_BLOCK", "Compressor", "crc32", "deflater", "gzipper", "stored_blocks"]

crc32 = _fast.crc32 if _fast is not None else zlib.crc32
# isal level 2: float32 weights to 0.926 of their size at ~560 MB/s; zlib 9 reaches 0.928 at 25.
DEFLATE_LEVEL = 2 if _fast is not None else 6
STORED_BLOCK_MAX = 0xFFFF
FINAL_STORED_BLOCK = b"\x01\x00\x00\xff\xff"  # an empty block with BFINAL set


class Compressor(Protocol):
    """What zlib's and isal's compress objects share."""

    def compress(self, data: bytes | memoryview, /) -> bytes: ...
    def flush(self, mode: int = ..., /) -> bytes: ...


def deflater() -> Compressor:
    """A raw-deflate compressor (no zlib header), as zip entries hold."""
    module = _fast if _fast is not None else zlib
    return cast(Compressor, module.compressobj(DEFLATE_LEVEL, zlib.DEFLATED, -15))


def gzipper() -> Compressor:
    """A gzip-stream compressor (header with mtime 0, CRC-32 and size trailer)."""
    module = _fast if _fast is not None else zlib
    return cast(Compressor, module.compressobj(DEFLATE_LEVEL, zlib.DEFLATED, 31))


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
