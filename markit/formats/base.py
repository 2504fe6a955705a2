"""An archive being read, whatever its format: its members, their data, the problems met.

Every reader offers the same :class:`Archive` shape: :meth:`~Archive.scan` walks the
members in archive order and pushes each one's bytes through a :class:`MemberSink`;
readers that have an index (a zip file's central directory, a folder) also list
members without reading any data (:meth:`~Archive.index`). Problems a reader meets
are collected in :attr:`Archive.problems`, never raised, so ``verify`` can report
them all. :func:`markit.formats.detect.open_archive` picks the reader.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from markit.engine.buffers import BufferRing
from markit.errors import ArchiveError
from markit.model.limits import Limits
from markit.model.names import normalize, unsafe_reason
from markit.model.problems import Problem, problem

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "Archive",
    "ArchiveProblem",
    "Member",
    "MemberSink",
    "OpenSink",
    "find_root",
    "read_small",
    "relative_members",
]


class ArchiveProblem(ArchiveError):
    """The archive cannot be read (``not-an-archive``, ``corrupt``...): :attr:`problems` says why."""

    def __init__(self, label: str, *found: Problem) -> None:
        super().__init__("; ".join(f"{label}: {p.message}" for p in found))
        self.label = label
        self.problems = found


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
        """Check what can be checked without the data (zip: local headers against the central directory);
        :meth:`scan` does it too, in its own pass, if it has not been done."""

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
        out.append(Member(rest, m.kind, m.size, m.compressed_size, m.method, m.crc, m.mode, m.offset, m.detail))
    return out


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

