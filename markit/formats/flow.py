"""An entry's data flowing to a sink: stored bytes copied, deflate inflated, never past a limit.

Shared by the zip readers (raw deflate) and the tar reader (gzip). Inflating is bounded
twice: each call produces at most one chunk (so a few compressed bytes cannot make
markit hold gigabytes), and the total stops one byte past what the header declared or
the limits allow (so a lying header is caught, never obeyed).
"""

from __future__ import annotations

import types
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, cast

from markit.engine.buffers import CHUNK, BufferRing
from markit.formats.base import MemberSink

_inflate_module: types.ModuleType
try:
    from isal import isal_zlib

    _inflate_module = isal_zlib
    INFLATE_ERRORS: tuple[type[Exception], ...] = (zlib.error, cast("type[Exception]", isal_zlib.error))
except ImportError:  # pragma: no cover - isal is a declared dependency
    _inflate_module = zlib
    INFLATE_ERRORS = (zlib.error,)

__all__ = ["INFLATE_ERRORS", "Decompressor", "Flow", "copy_stored", "inflate", "inflater"]

_RATIO_FROM = 1 << 20  # the running ratio of a stream entry is judged once it has produced 1 MiB
_FIRST_READ = 1 << 16  # 64 KiB: the first read of a deflate stream of unknown length


class Decompressor(Protocol):
    """What zlib's and isal's decompress objects share."""

    @property
    def eof(self) -> bool: ...
    @property
    def unused_data(self) -> bytes: ...
    @property
    def unconsumed_tail(self) -> bytes: ...
    def decompress(self, data: bytes, max_length: int = ..., /) -> bytes: ...


def inflater(wbits: int = -15) -> Decompressor:
    """A decompressor: raw deflate (zip entries) by default, 31 for gzip. isal when it imports."""
    return cast(Decompressor, _inflate_module.decompressobj(wbits))



@dataclass(frozen=True)
class Flow:
    """What streaming one entry's data gave."""

    produced: int
    """Uncompressed bytes delivered to the sink."""
    consumed: int
    """Compressed bytes the data took (a deflate stream's own length)."""
    error: tuple[str, str] | None = None
    """(code, message) if the data could not all be delivered."""
    unused: bytes = b""
    """Bytes read past the end of a deflate stream (a stream reader puts them back)."""


def copy_stored(read_into: Callable[[memoryview], int], size: int, sink: MemberSink, ring: BufferRing) -> Flow:
    """Deliver *size* stored bytes to *sink*, read by *read_into* into *ring*'s buffers."""
    left = size
    while left:
        chunk = ring.fill(read_into, min(CHUNK, left))
        if not chunk:
            return Flow(size - left, size - left, ("corrupt", f"the data ends after {size - left:,} of {size:,} bytes"))
        sink.write(chunk)
        left -= len(chunk)
    return Flow(size, size)


def inflate(read: Callable[[int], bytes], sink: MemberSink, *, compressed: int | None, declared: int | None,
            budget: int, max_ratio: float) -> Flow:
    """Inflate one raw-deflate stream from *read* into *sink*, never producing more than allowed.

    At most *compressed* bytes are read (None: until the stream ends), and output stops
    one byte past *declared* (``bomb``: longer than its header says), past *budget*, or,
    when nothing is declared, once the ratio exceeds *max_ratio*.
    """
    d = inflater()
    consumed = produced = 0
    cap = min(declared if declared is not None else budget, budget)
    step = _FIRST_READ
    while not d.eof:
        # From a stream, reads grow from 64 KiB: what is read past the end is pushed back, and
        # pushing back a whole chunk after each small entry would copy megabytes per entry.
        want = step if compressed is None else min(CHUNK, compressed - consumed)
        step = min(2 * step, CHUNK)
        data = read(want) if want > 0 else b""
        if not data:
            return Flow(produced, consumed, ("corrupt", f"the deflate data ends early, after {consumed:,} bytes"))
        consumed += len(data)
        try:
            produced, error = _inflate_chunk(d, data, sink, produced, cap)
        except INFLATE_ERRORS as caught:
            return Flow(produced, consumed, ("corrupt", f"the deflate data is invalid ({caught})"))
        if error is None and declared is None and produced > _RATIO_FROM and produced > max_ratio * consumed:
            error = f"it inflates over {max_ratio:g} times its compressed size (--max-ratio)"
        if error is not None:
            return Flow(produced, consumed, ("bomb", error))
    unused = d.unused_data
    return Flow(produced, consumed - len(unused), None, unused)


def _inflate_chunk(d: Decompressor, data: bytes, sink: MemberSink, produced: int, cap: int) -> tuple[int, str | None]:
    while True:
        limit = min(CHUNK, cap - produced + 1)
        out = d.decompress(data, limit)
        data = d.unconsumed_tail
        if len(out) > cap - produced:
            return produced + len(out), f"the data inflates past {cap:,} bytes, more than declared or allowed"
        if out:
            sink.write(out)
            produced += len(out)
        if d.eof or (not data and len(out) < limit):
            return produced, None
