"""Writing a zip (``.mar``) entry by entry, as TorchServe's Java reader accepts it.

Two layouts, both loaded by ``java.util.zip.ZipInputStream`` (which reads only
local headers) and by ``zipfile`` (which reads only the central directory):

* to a seekable file: no data descriptors at all. A member whose bytes are in
  memory (a file of up to one chunk, read whole; a generated file) is encoded
  first and written once, header and data in one call, its CRC and sizes known
  (:meth:`ZipWriter.add_whole`). A larger one streams (:meth:`ZipWriter.add`): the
  local header is written with the CRC unknown, the data follows, and the header
  is rewritten in place (``pwrite``) once the CRC and compressed size are known. With *keep_smaller*
  (``--compression auto``), a deflate entry that deflate does not shrink is
  stored instead: decided in memory from its first chunk (all of it up to 1 MiB),
  and for a larger entry whose whole came out no smaller than its size, its data
  is truncated and written again, stored (its source is read a second time).
* to a stream: every entry is DEFLATE with a 16-byte data descriptor (Java
  refuses a descriptor on STORED entries). Entries to be stored become deflate
  *stored blocks*: method 8, the bytes uncompressed, 5 bytes per 64 KiB.
  Over 4 GiB the descriptor is the 24-byte zip64 one, which is what Java reads
  once more than 4 GiB have passed.
"""

from __future__ import annotations

from markit.engine.codec import FINAL_STORED_BLOCK, Deflater, stored_blocks, stored_size
from markit.engine.datapass import Digest, Feed
from markit.formats.zip import records as zf
from markit.storage.sinks import Sink

__all__ = ["ZipWriter"]

Buffer = bytes | memoryview

# Streaming deflate whose output could straddle 4 GiB is written as stored blocks,
# whose size is known in advance: Java picks the descriptor size from the byte count.
_STREAM_DEFLATE_MAX = zf.U32_MAX - (1 << 24)
# Seekable deflate entries this large get a zip64 extra up front, since the
# compressed size is not known when the header is written (expansion < 0.1%).
_ZIP64_DEFLATE_FROM = zf.U32_MAX - (1 << 24)


class ZipWriter:
    """Entries in, zip bytes out to a :class:`Sink`."""

    def __init__(self, sink: Sink, *, keep_smaller: bool = False) -> None:
        self.sink = sink
        self.keep_smaller = keep_smaller
        self.central = bytearray()
        """The central directory so far: each member's header, encoded as its data is written."""
        self.count = 0
        """Members written."""
        self._dates: dict[int, tuple[int, int]] = {}  # DOS date and time by whole second: few distinct ones

    def _layout(self, method: str, size: int) -> str:
        """How *method* is written to this sink: store, deflate, blocks (see the module docstring) or smaller."""
        if not self.sink.seekable:
            return "blocks" if method == "store" or size > _STREAM_DEFLATE_MAX else method
        return "smaller" if method == "deflate" and self.keep_smaller else method

    @staticmethod
    def _zip64(layout: str, size: int) -> bool:
        """Whether the local header carries a zip64 extra: decided from the size, before any data."""
        if layout == "blocks":
            return stored_size(size) + len(FINAL_STORED_BLOCK) > zf.U32_MAX
        return size >= (zf.U32_MAX if layout == "store" else _ZIP64_DEFLATE_FROM)

    def _date_time(self, mtime: float) -> tuple[int, int]:
        second = int(mtime)  # what gmtime reads of it (below 1980, clamped anyway)
        found = self._dates.get(second)
        if found is None:
            found = self._dates[second] = zf.dos_date_time(mtime)
        return found

    def _member(self, member: zf.ZipMember) -> None:
        self.central += zf.central_header(member)
        self.count += 1

    def add_whole(self, name: str, mtime: float, mode: int, method: str, data: Buffer, digest: Digest) -> None:
        """One member whose bytes are all in *data*, and their *digest*: encoded, then written in one call.

        The bytes are those :meth:`add` writes for the same member given as one chunk. *data*
        is copied or written before this returns, so its buffer may be reused.
        """
        size = len(data)
        layout = self._layout(method, size)
        if layout == "store":
            code, pieces, csize = zf.METHOD_STORE, [data], size
        else:
            code, pieces = _encoded(layout, data)
            csize = sum(map(len, pieces))
        streaming = not self.sink.seekable
        zip64 = self._zip64(layout, size)
        date_time = self._date_time(mtime)
        header = zf.local_header(name, method=code, date_time=date_time, crc=digest.crc, compressed_size=csize,
                                 size=size, descriptor=streaming, zip64=zip64)
        offset = self.sink.position
        if streaming:
            self.sink.write(header, *pieces, zf.data_descriptor(digest.crc, csize, size, zip64=zip64))
        else:
            self.sink.write(header, *pieces)
        flags = header[6] | header[7] << 8
        self._member(zf.ZipMember(name, code, flags, date_time, digest.crc, csize, size, offset, mode))

    def add(self, name: str, size: int, mtime: float, mode: int, method: str, feed: Feed) -> Digest:
        """One member of *size* bytes whose data *feed* supplies, with *method* store or deflate."""
        sink = self.sink
        streaming = not sink.seekable
        method = self._layout(method, size)
        zip64 = self._zip64(method, size)
        date_time = self._date_time(mtime)
        offset = sink.position

        def header(code: int, crc: int, csize: int) -> bytes:
            return zf.local_header(name, method=code, date_time=date_time, crc=crc, compressed_size=csize,
                                   size=size, descriptor=streaming, zip64=zip64)

        code = zf.METHOD_STORE if method == "store" else zf.METHOD_DEFLATE
        first = header(code, 0, size if method == "store" else 0)
        sink.write(first)
        start = sink.position
        if method == "smaller":
            digest, code = self._smaller(feed, size, start)
        else:
            digest = self._data(method, feed)
        csize = sink.position - start
        if streaming:
            sink.write(zf.data_descriptor(digest.crc, csize, size, zip64=zip64))
        else:
            sink.pwrite(header(code, digest.crc, csize), offset)  # same length: zip64 was chosen up front
        flags = int.from_bytes(first[6:8], "little")
        self._member(zf.ZipMember(name, code, flags, date_time, digest.crc, csize, size, offset, mode))
        return digest

    def _data(self, method: str, feed: Feed) -> Digest:
        sink = self.sink
        if method == "deflate":
            deflater = Deflater()
            digest = feed(lambda chunk: sink.write(*deflater.compress(chunk)))
            sink.write(deflater.finish())
        elif method == "blocks":
            digest = feed(lambda chunk: sink.write(*stored_blocks(chunk, final=False)))
            sink.write(FINAL_STORED_BLOCK)
        else:
            digest = feed(sink.write)
        return digest

    def _smaller(self, feed: Feed, size: int, start: int) -> tuple[Digest, int]:
        """Deflate, or store what deflate does not shrink; the data and the method code it was written with."""
        chooser = _Smaller(self.sink, size)
        digest = feed(chooser)
        chooser.end()
        if chooser.deflater is None:
            return digest, zf.METHOD_STORE
        if self.sink.position - start < size:
            return digest, zf.METHOD_DEFLATE
        # its first chunk shrank, the whole did not: stored, it is smaller (a second read, rare)
        self.sink.truncate(start)
        return feed(self.sink.write), zf.METHOD_STORE

    def finish(self) -> None:
        """Write the central directory and the end records."""
        start = self.sink.position
        self.sink.write(self.central, zf.end_records(self.count, start, len(self.central)))


def _encoded(layout: str, data: Buffer) -> tuple[int, list[Buffer]]:
    """The method code and the bytes of a member given whole, as :meth:`ZipWriter.add` writes them for one chunk."""
    if layout == "store":
        return zf.METHOD_STORE, [data]
    if layout == "blocks":
        return zf.METHOD_DEFLATE, stored_blocks(memoryview(data), final=True)
    if not data:  # no chunk: the stream is its last block alone (deflate), or nothing at all (smaller: stored)
        return (zf.METHOD_DEFLATE, [Deflater().finish()]) if layout == "deflate" else (zf.METHOD_STORE, [])
    deflater = Deflater()
    if layout == "smaller":
        # compress() would send stored blocks for output over their size: larger than data, so stored either way
        deflated = deflater.deflate(memoryview(data))
        if len(deflated) >= len(data):
            return zf.METHOD_STORE, [data]  # deflate did not shrink it, and its last block only adds bytes
        out: list[Buffer] = [deflated, deflater.finish()]
        return (zf.METHOD_DEFLATE, out) if sum(map(len, out)) < len(data) else (zf.METHOD_STORE, [data])
    return zf.METHOD_DEFLATE, [*deflater.compress(memoryview(data)), deflater.finish()]


class _Smaller:
    """A consumer that deflates an entry if deflate shrinks its first chunk, else stores it.

    An entry of one chunk (up to 1 MiB, every small file) is decided on all its bytes,
    its deflate stream ended; a larger one on its first chunk (:meth:`ZipWriter._smaller`
    checks the whole). Chunks after the first are written as the first was.
    """

    def __init__(self, sink: Sink, size: int) -> None:
        self.sink = sink
        self.size = size
        self.decided = False
        self.deflater: Deflater | None = None
        """The entry's deflater once deflate is chosen; None while storing (or undecided)."""
        self.ended = False

    def __call__(self, chunk: memoryview) -> None:
        if self.decided:
            self.sink.write(*(self.deflater.compress(chunk) if self.deflater is not None else (chunk,)))
            return
        self.decided = True
        deflater = Deflater()
        out = deflater.compress(chunk)
        self.ended = len(chunk) >= self.size  # the whole entry: its stream can end now
        if self.ended:
            out.append(deflater.finish())
        if sum(len(part) for part in out) < len(chunk):
            self.deflater = deflater
            self.sink.write(*out)
        else:
            self.sink.write(chunk)

    def end(self) -> None:
        """The data has all passed: end the deflate stream if it is not ended."""
        if self.deflater is not None and not self.ended:
            self.sink.write(self.deflater.finish())
