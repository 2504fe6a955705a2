"""An archive being read: its format found from its bytes, its members, their data.

:func:`open_archive` takes a path, a folder or ``-`` (stdin), looks at the first
bytes (zip local header or end record, gzip magic ``1f 8b``, ``ustar`` at offset
257) and returns the reader for that format. Every reader offers the same
:class:`Archive` shape: :meth:`~Archive.scan` walks the members in archive order
and pushes each one's bytes through a :class:`MemberSink`; readers that have an
index (a zip file's central directory, a folder) also list members without
reading any data (:meth:`~Archive.index`). Problems a reader meets are collected
in :attr:`Archive.problems`, never raised, so ``verify`` can report them all.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, BinaryIO, Protocol

from markit.checks import Limits, Problem, normalize, problem, unsafe_reason
from markit.errors import ArchiveError

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "CHUNK",
    "RING",
    "Archive",
    "ArchiveProblem",
    "BufferRing",
    "ByteSource",
    "Member",
    "MemberSink",
    "OpenSink",
    "Truncated",
    "detect_format",
    "find_root",
    "open_archive",
    "read_small",
    "relative_members",
]

CHUNK = 1 << 20  # 1 MiB: per-chunk Python overhead is under 1% of the time to hash it
# Read buffers used in turn. A chunk stays intact while the next RING - 1 are read; the SHA-256
# worker holds at most 3 chunks (2 queued, 1 hashing: datapass.Sha256Worker), so a chunk is always
# hashed before its buffer is reused. Reusing buffers, rather than allocating 1 MiB per read,
# spares glibc's mmap/munmap of every chunk, which costs more than the copy on 2 CPUs.
RING = 4
HEAD = 512  # bytes looked at to find the format: one tar header block


class ArchiveProblem(ArchiveError):
    """The archive cannot be read (``not-an-archive``, ``corrupt``...): :attr:`problems` says why."""

    def __init__(self, label: str, *found: Problem) -> None:
        super().__init__("; ".join(f"{label}: {p.message}" for p in found))
        self.label = label
        self.problems = found


class Truncated(ArchiveError):
    """The bytes ended before a structure did."""


@dataclass(frozen=True, slots=True)
class Member:
    """One entry of an archive, as its headers declare it."""

    name: str
    """Its name in the archive ('/'-separated); tar names include the top folder until :func:`relative_members`."""
    kind: str
    """``file``, ``dir``, ``symlink``, ``hardlink`` or ``special``."""
    size: int | None = 0
    """Declared bytes once uncompressed; None until a zip data descriptor is read."""
    compressed_size: int | None = None
    """Declared bytes as stored (zip only)."""
    method: str | None = None
    """``store``, ``deflate`` or another zip method's name; None for tar and folders."""
    crc: int | None = None
    """Declared CRC-32 (zip only)."""
    mode: int | None = None
    """Unix ``st_mode`` (type and permission bits), when the archive records one."""
    offset: int | None = None
    """Where its header starts in the archive (tar: in the uncompressed stream)."""
    detail: str = ""
    """A link's target, or what a special entry is ("FIFO", "character device", ...)."""



class MemberSink(Protocol):
    """Where a member's bytes go during :meth:`Archive.scan`."""

    def write(self, chunk: bytes | memoryview) -> None:
        """The next bytes of the member. A memoryview is a :class:`BufferRing` buffer: it stays
        intact only while the next ``RING - 1`` chunks are read."""

    def done(self, member: Member, complete: bool) -> None:
        """The member's data is over; *member* carries what its descriptor said; *complete* is False if
        the reader could not deliver all of it (the reader reported why)."""


OpenSink = Callable[[Member], "MemberSink | None"]
"""Called with each member before its data; returns a sink, or None to skip the data."""


def detect_format(head: bytes) -> str | None:
    """``zip``, ``tar.gz`` or ``tar`` from an archive's first bytes, or None."""
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if head[:2] == b"\x1f\x8b":
        return "tar.gz"
    if head[257:262] == b"ustar":
        return "tar"
    return None


class ByteSource:
    """Bytes read in order from a file or a pipe, with push-back; knows its position."""

    def __init__(self, file: BinaryIO, *, size: int | None, owned: bool = True) -> None:
        self.file = file
        self.size = size
        """Total bytes, when the source is a regular file (then :meth:`skip` seeks)."""
        self.owned = owned
        """Whether :meth:`close` closes *file* (not stdin)."""
        self.position = 0
        self._back = b""
        self._at = 0

    def read_into(self, view: memoryview) -> int:
        """Fill *view* (up to its length); the bytes read."""
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def read(self, n: int) -> bytes:
        """Up to *n* bytes; fewer only at the end."""
        if self._at < len(self._back):
            data = self._back[self._at : self._at + n]
            self._at += len(data)
            if len(data) < n:
                data += self.file.read(n - len(data))
        else:
            data = self.file.read(n)
        self.position += len(data)
        return data

    def read_exact(self, n: int, what: str) -> bytes:
        """Exactly *n* bytes, or :class:`Truncated` naming *what* was cut."""
        data = self.read(n)
        while len(data) < n:
            more = self.read(n - len(data))
            if not more:
                raise Truncated(f"the archive ends inside {what} (at byte {self.position:,})")
            data += more
        return data

    def unread(self, data: bytes) -> None:
        """Put *data* back: the next read returns it first."""
        if data:
            self._back = data + self._back[self._at :]
            self._at = 0
            self.position -= len(data)

    def peek(self, n: int) -> bytes:
        """The next *n* bytes (fewer at the end) without consuming them."""
        data = self.read(n)
        while 0 < len(data) < n and (more := self.read(n - len(data))):
            data += more
        self.unread(data)
        return data

    def close(self) -> None:
        """Close the file, unless it is stdin."""
        if self.owned:
            self.file.close()

    def skip(self, n: int, what: str) -> None:
        """Pass over *n* bytes: a seek for a file, reads for a pipe."""
        if self.size is not None and self._at >= len(self._back):
            if self.position + n > self.size:
                raise Truncated(f"the archive ends inside {what} (at byte {self.size:,})")
            self.file.seek(n, os.SEEK_CUR)
            self.position += n
            return
        while n > 0:
            got = len(self.read_exact(min(n, CHUNK), what))
            n -= got


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


class Archive:
    """What every reader offers. Subclasses set :attr:`format` and implement :meth:`scan`."""

    format = ""

    def __init__(self, label: str, limits: Limits) -> None:
        self.label = label
        """The archive as the user named it (``-`` for stdin)."""
        self.limits = limits
        self.problems: list[Problem] = []
        """What the reader found wrong, in the order found."""
        self.complete = True
        """False once the reader had to stop before the end."""
        self.root: str | None = None
        """The top folder every tar name starts with, once :meth:`scan` has seen them all."""
        self.stream_size: int | None = None
        """Compressed bytes of a tar.gz, for the whole-stream ratio check."""
        self.ring = BufferRing()
        """Buffers for reading stored data."""

    def report(self, code: str, path: str | None, message: str) -> None:
        """Note a problem and read on."""
        self.problems.append(problem(code, path, message))

    def stop(self, code: str, path: str | None, message: str) -> None:
        """Note a problem that ends the reading."""
        self.report(code, path, message)
        self.complete = False

    def index(self) -> list[Member] | None:
        """The members without reading their data, or None if the format has no index (streams, tar)."""
        return None

    def check_structure(self) -> None:
        """Check what can be checked without the data (zip: local headers against the central directory)."""

    def read(self, member: Member, sink: MemberSink) -> None:
        """Push one member's data through *sink* (indexed archives only)."""
        raise NotImplementedError

    def scan(self, open_sink: OpenSink) -> list[Member]:
        """Every member in archive order, each one's data pushed through the sink *open_sink* gives."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the file."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def find_root(members: Iterable[Member]) -> str | None:
    """The one top folder every member's name starts with, as torch-model-archiver's tgz has, or None.

    ``model/a``, ``model/b/c`` and a ``model/`` folder entry share ``model``; ``./a`` and ``./``
    share ``.``. A name with no folder (``a``) or an unsafe first component means no root.
    """
    root: str | None = None
    for m in members:
        first, sep, rest = m.name.partition("/")
        if not sep or (normalize(rest) == "" and m.kind != "dir"):
            return None
        if root is None:
            if first in ("", "..") or unsafe_reason(first) is not None:
                return None
            root = first
        elif first != root:
            return None
    return root


def relative_members(members: Sequence[Member], root: str | None) -> list[Member]:
    """*members* named relative to *root*, the root's own folder entries left out."""
    if root is None:
        return list(members)
    out = []
    for m in members:
        rest = m.name.partition("/")[2]
        if normalize(rest) == "" and m.kind == "dir":
            continue
        out.append(replace(m, name=rest))
    return out


def _open_file(path: str) -> tuple[BinaryIO, int | None]:
    try:
        file = open(path, "rb")  # noqa: SIM115 - the archive object owns and closes it
        st = os.fstat(file.fileno())
    except OSError as error:
        raise ArchiveError(f"{path}: cannot read ({error.strerror or error})") from None
    return file, st.st_size if stat.S_ISREG(st.st_mode) else None


def open_archive(path: str, limits: Limits | None = None) -> Archive:
    """The reader for *path* (a file, a folder, or ``-`` for stdin), chosen from its bytes.

    :class:`ArchiveProblem` (``not-an-archive``) if no format matches.
    """
    limits = limits or Limits()
    if path != "-" and os.path.isdir(path):
        from markit.folderreader import FolderArchive

        return FolderArchive(path, limits)
    file, size = (sys.stdin.buffer, None) if path == "-" else _open_file(path)
    source = ByteSource(file, size=size, owned=path != "-")
    try:
        head = source.peek(HEAD)
    except OSError as error:
        source.close()
        raise ArchiveError(f"{path}: cannot read ({error.strerror or error})") from None
    found = detect_format(head)
    if found is None:
        source.close()
        what = "it is empty" if not head else f"it starts with {head[:8].hex(' ')}"
        raise ArchiveProblem(path, problem("not-an-archive", None, f"not a zip, tar or tar.gz archive ({what})"))
    return _reader(found, path, source, limits)


def _reader(found: str, label: str, source: ByteSource, limits: Limits) -> Archive:
    if found == "zip":
        from markit.zipreader import ZipFileArchive, ZipStreamArchive

        if source.size is not None:
            return ZipFileArchive(source, label, limits)
        return ZipStreamArchive(source, label, limits)
    from markit.tarreader import TarArchive

    return TarArchive(source, label, limits, gzipped=found == "tar.gz")


class _Enough(Exception):
    """A capture is full: stop reading the member."""


class _Capture:
    """A sink that keeps the first *cap* bytes and stops the reader past them."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.data = bytearray()
        self.complete = False

    def write(self, chunk: bytes | memoryview) -> None:
        self.data += chunk[: self.cap - len(self.data)]
        if len(self.data) >= self.cap:
            raise _Enough

    def done(self, member: Member, complete: bool) -> None:
        self.complete = complete


def read_small(archive: Archive, member: Member, cap: int) -> bytes | None:
    """The first *cap* bytes of *member* (an indexed archive's), or None if its data cannot be read."""
    capture = _Capture(cap)
    try:
        archive.read(member, capture)
    except _Enough:
        return bytes(capture.data)
    return bytes(capture.data) if capture.complete else None
