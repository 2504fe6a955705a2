"""Reading a ``no-archive`` folder as an archive: its files are the members.

The walk is sorted and never follows a symbolic link: a link is reported as a
``link-entry`` member, a FIFO or device as a ``special-entry``. Files are opened
one component at a time with ``O_NOFOLLOW``, so a link swapped in after the walk
is refused rather than followed, and a file whose size changed is reported.
"""

from __future__ import annotations

import os
import stat

from markit.engine.buffers import CHUNK
from markit.formats.base import Archive, Member, MemberSink, OpenSink
from markit.model.limits import Limits
from markit.model.problems import quote

__all__ = ["FolderArchive"]

_TYPES = {stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device", stat.S_IFIFO: "a FIFO",
          stat.S_IFSOCK: "a socket"}
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


class FolderArchive(Archive):
    """A folder: members from a sorted walk, data read file by file."""

    format = "directory"

    def __init__(self, path: str, limits: Limits) -> None:
        super().__init__(path, limits)
        self.path = path
        self._members: list[Member] | None = None

    def index(self) -> list[Member]:
        """Every file, folder, link and special file under the folder, sorted; nothing is read."""
        if self._members is None:
            self._members = []
            self._walk(self.path, "", self._members)
        return self._members

    def _walk(self, folder: str, prefix: str, out: list[Member]) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as error:
            self.stop("corrupt", prefix or None, f"cannot list {quote(folder)} ({error.strerror or error})")
            return
        for entry in entries:
            if len(out) >= self.limits.max_entries:
                self.stop("bomb", None, f"more than {self.limits.max_entries:,} entries (--max-entries)")
                return
            name = prefix + entry.name
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                out.append(Member(name + "/", "dir", 0, mode=st.st_mode))
                self._walk(entry.path, name + "/", out)
            else:
                out.append(_member(name, entry.path, st))

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
        parts = name.split("/")
        fd = os.open(self.path, os.O_RDONLY | _DIRECTORY)
        try:
            for part in parts[:-1]:
                inner = os.open(part, os.O_RDONLY | _DIRECTORY | _NOFOLLOW, dir_fd=fd)
                os.close(fd)
                fd = inner
            return os.open(parts[-1], os.O_RDONLY | _NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
        finally:
            os.close(fd)

    def _copy(self, fd: int, member: Member, sink: MemberSink) -> bool:
        size = member.size or 0
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            self.report("corrupt", member.name, f"entry {quote(member.name)}: no longer a regular file")
            return False
        done = 0
        while done < size:
            chunk = self.ring.fill(lambda view: os.readv(fd, [view]), min(CHUNK, size - done))
            if not chunk:
                break
            sink.write(chunk)
            done += len(chunk)
        if done == size and os.read(fd, 1):
            done += 1  # it grew
        if done != size:
            self.report("corrupt", member.name, f"entry {quote(member.name)}: changed while read ({size:,} bytes"
                        f" when listed, {done:,}{'+' if done > size else ''} when read)")
        return done == size

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


def _member(name: str, path: str, st: os.stat_result) -> Member:
    if stat.S_ISREG(st.st_mode):
        return Member(name, "file", st.st_size, mode=st.st_mode)
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.readlink(path)
        except OSError:
            target = ""
        return Member(name, "symlink", 0, mode=st.st_mode, detail=target)
    return Member(name, "special", 0, mode=st.st_mode, detail=_TYPES.get(stat.S_IFMT(st.st_mode), "a special file"))
