"""Read buffers shared by every data pass: a ring of fixed 1 MiB buffers, filled in turn and reused."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["CHUNK", "RING", "BufferRing"]

CHUNK = 1 << 20  # 1 MiB: per-chunk Python overhead is under 1% of the time to hash it, and it fits L2
# Read buffers used in turn. A chunk stays intact while the next RING - 1 are read; the data pass
# holds at most RING - 1 chunks on its workers (markit.engine.datapass), so a chunk is always
# consumed before its buffer is reused. Reusing buffers, rather than allocating 1 MiB per read,
# spares glibc's mmap/munmap of every chunk, which costs more than the copy on 2 CPUs.
RING = 4


class BufferRing:
    """:data:`RING` read buffers of :data:`CHUNK` bytes, filled in turn; allocated on first use."""

    def __init__(self) -> None:
        self._buffers: list[bytearray] = []
        self._next = 0

    def fill(self, read_into: Callable[[memoryview], int], n: int) -> memoryview:
        """The next buffer's first *n* bytes (n <= CHUNK), filled by *read_into*; as many as it read."""
        if not self._buffers:
            self._buffers = [bytearray(CHUNK) for _ in range(RING)]
        view = memoryview(self._buffers[self._next])[:n]
        self._next = (self._next + 1) % RING
        return view[: read_into(view)]

