"""Writing a zip (``.mar``) entry by entry, as TorchServe's Java reader accepts it.

Two layouts, both loaded by ``java.util.zip.ZipInputStream`` (which reads only
local headers) and by ``zipfile`` (which reads only the central directory):

* to a seekable file: no data descriptors at all. The local header is written
  with the CRC unknown, the data follows, and the header is rewritten in place
  (``pwrite``) once the CRC and compressed size are known.
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

# Streaming deflate whose output could straddle 4 GiB is written as stored blocks,
# whose size is known in advance: Java picks the descriptor size from the byte count.
_STREAM_DEFLATE_MAX = zf.U32_MAX - (1 << 24)
# Seekable deflate entries this large get a zip64 extra up front, since the
# compressed size is not known when the header is written (expansion < 0.1%).
_ZIP64_DEFLATE_FROM = zf.U32_MAX - (1 << 24)


class ZipWriter:
    """Entries in, zip bytes out to a :class:`Sink`."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.members: list[zf.ZipMember] = []

    def add(self, name: str, size: int, mtime: float, mode: int, method: str, feed: Feed) -> Digest:
        """One member of *size* bytes whose data *feed* supplies, with *method* store or deflate."""
        sink = self.sink
        streaming = not sink.seekable
        if streaming and (method == "store" or size > _STREAM_DEFLATE_MAX):
            method = "blocks"  # see the module docstring
        if method == "blocks":
            zip64 = stored_size(size) + len(FINAL_STORED_BLOCK) > zf.U32_MAX
        else:
            zip64 = size >= (_ZIP64_DEFLATE_FROM if method == "deflate" else zf.U32_MAX)
        code = zf.METHOD_STORE if method == "store" else zf.METHOD_DEFLATE
        date_time = zf.dos_date_time(mtime)
        offset = sink.position

        def header(crc: int, csize: int) -> bytes:
            return zf.local_header(name, method=code, date_time=date_time, crc=crc, compressed_size=csize,
                                   size=size, descriptor=streaming, zip64=zip64)

        first = header(0, size if method == "store" else 0)
        sink.write(first)
        start = sink.position
        digest = self._data(method, feed)
        csize = sink.position - start
        if streaming:
            sink.write(zf.data_descriptor(digest.crc, csize, size, zip64=zip64))
        else:
            sink.pwrite(header(digest.crc, csize), offset)  # same length: zip64 was chosen up front
        flags = int.from_bytes(first[6:8], "little")
        self.members.append(zf.ZipMember(name, code, flags, date_time, digest.crc, csize, size, offset, mode))
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

    def finish(self) -> None:
        """Write the central directory and the end records."""
        start = self.sink.position
        self.sink.write(*(zf.central_header(m) for m in self.members))
        self.sink.write(zf.end_records(len(self.members), start, self.sink.position - start))
