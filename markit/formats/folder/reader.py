"""Reading a ``no-archive`` folder as an archive: its files are the members.

The walk is sorted and never follows a symbolic link: a link is reported as a
``link-entry`` member, a FIFO or device as a ``special-entry``. It is iterative and holds
one folder open at a time (it climbs back through ``..``, checking it is the folder it
left), so a tree of any depth costs neither recursion nor file descriptors nor
``PATH_MAX``; it does not descend below a name longer than :data:`NAME_MAX_BYTES`
(``unsafe-path`` already). Files are opened one component at a time with ``O_NOFOLLOW``,
so a link swapped in after the walk is refused rather than followed, and a file whose
size changed is reported.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from markit.engine.buffers import CHUNK
from markit.formats.base import Archive, Member, MemberSink, OpenSink
from markit.model.limits import Limits
from markit.model.names import NAME_MAX_BYTES
from markit.model.problems import quote

__all__ = ["FolderArchive"]

_TYPES = {stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device", stat.S_IFIFO: "a FIFO",
          stat.S_IFSOCK: "a socket"}
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_FOLDER = os.O_RDONLY | _DIRECTORY | _NOFOLLOW


@dataclass
class _Level:
    """One folder of the walk: its name (with a trailing ``/``), identity and entries not yet visited."""

    prefix: str
    identity: tuple[int, int]
    left: list[tuple[str, os.stat_result]]
    """(name, lstat) of each entry still to visit, the next one last."""


class FolderArchive(Archive):
    """A folder: members from a sorted walk, data read file by file."""

    format = "directory"

    def __init__(self, path: str, limits: Limits) -> None:
        super().__init__(path, limits)
        self.path = path
        self._members: list[Member] | None = None
        self._fd = -1
        """The folder the walk is in."""
        self._last: tuple[str, int] | None = None
        """The folder a file was read from last (its name, its descriptor)."""

    def index(self) -> list[Member]:
        """Every file, folder, link and special file under the folder, sorted; nothing is read."""
        if self._members is None:
            self._members = []
            try:
                fd = os.open(self.path, os.O_RDONLY | _DIRECTORY)
            except OSError as error:
                self.stop("corrupt", None, f"cannot list {quote(self.path)} ({error.strerror or error})")
                return self._members
            try:
                self._walk(fd, self._members)
            except OSError as error:  # the top folder cannot be listed, or a '..' cannot be opened
                self.stop("corrupt", None, f"cannot list {quote(self.path)} ({error.strerror or error})")
            finally:
                os.close(self._fd)
        return self._members

    def _walk(self, fd: int, out: list[Member]) -> None:
        """Depth first in sorted order, without recursion; :attr:`_fd` is the open folder (closed by the caller)."""
        self._fd = fd
        levels = [self._level(fd, "")]
        while levels:
            level = levels[-1]
            if not level.left:
                levels.pop()
                if levels and not self._climb(levels[-1]):
                    return
                continue
            if len(out) >= self.limits.max_entries:
                self.stop("bomb", None, f"more than {self.limits.max_entries:,} entries (--max-entries)")
                return
            part, st = level.left.pop()
            name = level.prefix + part
            if not stat.S_ISDIR(st.st_mode):
                out.append(_member(name, part, self._fd, st))
                continue
            out.append(Member(name + "/", "dir", 0, mode=st.st_mode))
            deeper = len(name.encode("utf-8", "surrogateescape")) + 2 <= NAME_MAX_BYTES  # else unsafe-path
            if deeper and (inner := self._enter(part, name)) is not None:
                levels.append(inner)

    def _level(self, fd: int, prefix: str) -> _Level:
        with os.scandir(fd) as listing:
            entries = sorted(((e.name, e.stat(follow_symlinks=False)) for e in listing), key=lambda e: e[0],
                             reverse=True)
        st = os.fstat(fd)
        return _Level(prefix, (st.st_dev, st.st_ino), entries)

    def _enter(self, part: str, name: str) -> _Level | None:
        """Open the folder *part* of the current one and list it; None (and a problem) if it cannot be."""
        try:
            inner = os.open(part, _FOLDER, dir_fd=self._fd)
        except OSError as error:
            self.stop("corrupt", name + "/", f"cannot list {quote(name + '/')} ({error.strerror or error})")
            return None
        os.close(self._fd)
        self._fd = inner
        try:
            return self._level(inner, name + "/")
        except OSError as error:
            self.stop("corrupt", name + "/", f"cannot list {quote(name + '/')} ({error.strerror or error})")
            return _Level(name + "/", (-1, -1), [])

    def _climb(self, parent: _Level) -> bool:
        """Go back up to *parent*'s folder through ``..``; False (and a problem) if that is another folder."""
        up = os.open("..", os.O_RDONLY | _DIRECTORY, dir_fd=self._fd)
        os.close(self._fd)
        self._fd = up
        st = os.fstat(up)
        if (st.st_dev, st.st_ino) != parent.identity:
            self.stop("corrupt", parent.prefix or None, f"{quote(parent.prefix or self.path)} was moved while listed")
            return False
        return True

    def read(self, member: Member, sink: MemberSink) -> None:
        """Push one file's bytes through *sink*, checking it is still the file that was listed."""
        try:
            fd = self._open(member.name)
        except OSError as error:
            self.report("corrupt", member.name, f"entry {quote(member.name)}: cannot open ({error.strerror or error})")
            sink.done(member, False)
            return
        try:
            complete = self._copy(fd, member, sink)
        finally:
            os.close(fd)
        sink.done(member, complete)

    def _open(self, name: str) -> int:
        """Open *name* under the folder without following any link on the way."""
        folder, _, leaf = name.rpartition("/")
        return os.open(leaf, os.O_RDONLY | _NOFOLLOW | os.O_NONBLOCK, dir_fd=self._reach(folder))

    def _reach(self, folder: str) -> int:
        """The folder *folder* ("" for the top) opened one component at a time with ``O_NOFOLLOW``.

        It stays open for the next file, and is the start when that file is inside it: a sorted
        read then opens each folder once, however deep the tree.
        """
        base, fd = self._last if self._last is not None else ("", -1)
        if fd < 0 or (base and folder != base and not folder.startswith(base + "/")):
            self.close()
            base, fd = "", os.open(self.path, os.O_RDONLY | _DIRECTORY)
            self._last = ("", fd)
        for part in filter(None, folder[len(base) :].split("/")):
            inner = os.open(part, _FOLDER, dir_fd=fd)
            os.close(fd)
            base, fd = f"{base}/{part}" if base else part, inner
            self._last = (base, fd)
        return fd

    def close(self) -> None:
        """Close the folder kept open for reading."""
        if self._last is not None:
            os.close(self._last[1])
            self._last = None

    def _copy(self, fd: int, member: Member, sink: MemberSink) -> bool:
        size = member.size or 0
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            self.report("corrupt", member.name, f"entry {quote(member.name)}: no longer a regular file")
            return False
        if size < CHUNK:  # one read, one more byte than listed to see it grew: a small file costs one call
            data = os.read(fd, size + 1)
            while len(data) <= size and (more := os.read(fd, size + 1 - len(data))):
                data += more
            if data:
                sink.write(memoryview(data)[:size])
            done = len(data)
        else:
            done = self._copy_chunks(fd, size, sink)
        if done != size:
            self.report("corrupt", member.name, f"entry {quote(member.name)}: changed while read ({size:,} bytes"
                        f" when listed, {done:,}{'+' if done > size else ''} when read)")
        return done == size

    def _copy_chunks(self, fd: int, size: int, sink: MemberSink) -> int:
        """*size* bytes in chunks through the ring; the bytes read (one more if the file grew)."""
        done = 0
        while done < size:
            chunk = self.ring.fill(lambda view: os.readv(fd, [view]), min(CHUNK, size - done))
            if not chunk:
                break
            sink.write(chunk)
            done += len(chunk)
        if done == size and os.read(fd, 1):
            done += 1  # it grew
        return done

    def scan(self, open_sink: OpenSink) -> list[Member]:
        """Every member in sorted order, each file's data pushed through its sink."""
        members = self.index()
        for member in members:
            sink = open_sink(member)
            if sink is None:
                continue
            if member.kind == "file":
                self.read(member, sink)
            else:
                sink.done(member, member.kind == "dir")
        return members


def _member(name: str, part: str, folder: int, st: os.stat_result) -> Member:
    if stat.S_ISREG(st.st_mode):
        return Member(name, "file", st.st_size, mode=st.st_mode)
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.readlink(part, dir_fd=folder)
        except OSError:
            target = ""
        return Member(name, "symlink", 0, mode=st.st_mode, detail=target)
    return Member(name, "special", 0, mode=st.st_mode, detail=_TYPES.get(stat.S_IFMT(st.st_mode), "a special file"))
