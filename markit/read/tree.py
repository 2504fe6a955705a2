"""The temporary tree ``unpack`` writes into, beside DEST: made, filled, put in place or removed.

Files are created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` and nothing but regular files and
folders is ever made, so no write can leave the tree. Folders are made and removed one
component at a time relative to an open folder, so a tree 2,000 deep costs no recursion nor
``PATH_MAX``; files that do not fit in the free space are refused (``bomb``) before they are
written. Removal never follows a link.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Sequence

from markit.errors import OutputError
from markit.formats.base import Member
from markit.model.limits import Limits
from markit.model.names import normalize, unsafe_reason
from markit.model.problems import Problem, problem, quote
from markit.read.datacheck import FileOut
from markit.read.entries import over_ratio, plain_name
from markit.storage.sinks import output_error

__all__ = ["TempTree", "free_space", "is_empty_folder", "no_room", "put_in_place", "remove_tree"]


_FOLDER = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)


_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)


_CLASH = (FileExistsError, NotADirectoryError, IsADirectoryError)  # a name already written: the duplicate check says


def is_empty_folder(path: str) -> bool:
    return os.path.isdir(path) and not os.path.islink(path) and not os.listdir(path)


def _clear(fd: int) -> tuple[tuple[int, int], list[str]]:
    """Unlink everything but folders in the folder open as *fd*: its identity and its folders' names."""
    entries = []
    with contextlib.suppress(OSError), os.scandir(fd) as listing:
        entries = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in listing]
    for name, is_folder in entries:
        if not is_folder:
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=fd)
    st = os.fstat(fd)
    return (st.st_dev, st.st_ino), [name for name, is_folder in entries if is_folder]


def _remove_contents(fd: int) -> None:
    """Remove everything in the folder open as *fd* (closed here): depth first, one folder open at a time.

    It climbs back through ``..`` and stops if that is not the folder it came from (the tree was moved).
    """
    levels = [_clear(fd)]
    try:
        while levels:
            folders = levels[-1][1]
            if folders:
                try:
                    inner = os.open(folders[-1], _FOLDER, dir_fd=fd)
                except OSError:
                    folders.pop()  # it stays
                    continue
                os.close(fd)
                fd = inner
                levels.append(_clear(fd))
                continue
            levels.pop()
            if levels:
                up = os.open("..", _FOLDER, dir_fd=fd)
                os.close(fd)
                fd, st = up, os.fstat(up)
                if (st.st_dev, st.st_ino) != levels[-1][0]:
                    return
                with contextlib.suppress(OSError):
                    os.rmdir(levels[-1][1].pop(), dir_fd=fd)
    finally:
        os.close(fd)


def remove_tree(path: str) -> None:
    """Remove *path* and all in it, never following a link, at any depth (3.11's ``shutil.rmtree`` recurses)."""
    try:
        fd = os.open(path, _FOLDER)
    except OSError:  # gone, a link or a file
        with contextlib.suppress(OSError):
            os.unlink(path)
        return
    with contextlib.suppress(OSError):
        _remove_contents(fd)
    with contextlib.suppress(OSError):
        os.rmdir(path)


def _folder(top: int, parts: Sequence[str]) -> int:
    """The folder *parts* (at least one) under the folder *top*, each component made if missing, newly opened."""
    fd = top
    try:
        for part in parts:
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o755, dir_fd=fd)
            inner = os.open(part, _FOLDER, dir_fd=fd)  # a file there: NotADirectoryError, a clash
            if fd != top:
                os.close(fd)
            fd = inner
    except BaseException:
        if fd != top:
            os.close(fd)
        raise
    return fd


def free_space(folder: str) -> int | None:
    """Bytes an unprivileged writer may still use on *folder*'s filesystem, or None if it does not say."""
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):  # no statvfs (Windows), or a filesystem that will not tell
        return None
    return st.f_bavail * st.f_frsize if st.f_blocks else None


def no_room(declared: int, room: int, parent: str) -> Problem:
    return problem("bomb", None, f"the files declare {declared:,} bytes, more than the {room:,} bytes free on the"
                   f" filesystem of {parent} (where DEST goes)")


class _File:
    """One file being written into the temporary tree, in the folder the tree holds open as *folder*."""

    __slots__ = ("fd", "folder", "late_mode", "member", "name", "tree")

    def __init__(self, tree: TempTree, fd: int, folder: int, name: str, member: Member) -> None:
        self.tree, self.fd, self.folder, self.name, self.member = tree, fd, folder, name, member.name
        self.late_mode = member.mode is None
        """Its mode is not known yet (a zip read from a pipe): remember it for :meth:`TempTree.set_modes`."""

    def write(self, chunk: bytes | memoryview) -> None:
        try:
            done = os.write(self.fd, chunk)
            if done < len(chunk):
                view = memoryview(chunk)[done:]
                while view:
                    view = view[os.write(self.fd, view) :]
        except OSError as error:
            raise output_error(f"{self.tree.label}: {quote(self.member)}", error) from None
        self.tree.size += len(chunk)

    def close(self, keep: bool) -> None:
        os.close(self.fd)
        try:
            if not keep:
                os.unlink(self.name.rpartition("/")[2], dir_fd=self.folder)
        finally:
            self.tree.release(self.folder)
        if keep:
            self.tree.files += 1
            if self.late_mode:
                self.tree.written[self.member] = self.name


class TempTree:
    """A hidden temporary folder beside DEST that receives the members, then becomes DEST.

    No file is written that declares a ratio past *limits* (the checks report it), nor once the
    files declare more than *room*, the free space of its filesystem (:meth:`own_problems` says so).
    """

    def __init__(self, parent: str, hint: str, label: str, *, limits: Limits, room: int | None = None) -> None:
        self.label, self.parent, self.limits, self.room = label, parent, limits, room
        try:
            self.path = tempfile.mkdtemp(prefix=f".{hint}.markit-", suffix=".tmp", dir=parent)
            self.fd = os.open(self.path, _FOLDER)
        except OSError as error:
            raise output_error(parent, error) from None
        self.files = self.size = self.declared = 0
        self.skipped: list[str] = []  # members not written: their name clashes with one written before
        self.unsafe: list[tuple[str, str]] = []  # members not written because of their name, and why
        self.written: dict[str, str] = {}  # name under the tree of each file kept whose mode came late, by member
        self._last = ("", self.fd)  # the folder reached last: its name under the tree, its descriptor
        self._users: dict[int, int] = {}  # each folder files are being written in: how many

    def open(self, member: Member) -> FileOut | None:
        """Make a folder, or create a file and return it for writing; unsafe or clashing names are skipped."""
        if member.kind not in ("file", "dir"):
            return None
        plain = plain_name(member.name)
        reason = None if plain else unsafe_reason(member.name)  # first: it bounds the name's length
        name = member.name.removesuffix("/") if plain else normalize(member.name) if reason is None else ""
        if reason is None and not name and member.kind == "file":
            reason = "the name has no file name in it"
        if reason is not None:
            self.unsafe.append((member.name, reason))
            return None
        if not name or not self._fits(member):
            return None
        try:
            folder = self._reach(name if member.kind == "dir" else name.rpartition("/")[0])
            if member.kind == "dir":
                return None
            mode = 0o755 if (member.mode or 0) & 0o111 else 0o644
            fd = os.open(name.rpartition("/")[2], _NEW_FILE, mode, dir_fd=folder)
        except _CLASH:
            self.skipped.append(member.name)
            return None
        except OSError as error:
            raise output_error(f"{self.label}: {quote(name)}", error) from None
        self._users[folder] = self._users.get(folder, 0) + 1
        return _File(self, fd, folder, name, member)

    def release(self, folder: int) -> None:
        """A file written in *folder* is closed: close the folder too if the tree has moved on from it."""
        if self.fd < 0:
            return  # the tree is closed, and its folders with it
        users = self._users.pop(folder, 1) - 1
        if users:
            self._users[folder] = users
        elif folder not in (self._last[1], self.fd):
            os.close(folder)

    def _reach(self, name: str) -> int:
        """The folder *name* of the tree (normalised; "" for the top), made if missing; the descriptor stays
        the tree's. It starts from the folder reached last if *name* is in it: a sorted walk opens each folder
        once, however deep."""
        base, fd = self._last
        if base and name != base and not name.startswith(base + "/"):
            base, fd = "", self.fd
        rest = name[len(base) :].strip("/")
        if not rest:
            return fd
        inner = _folder(fd, rest.split("/"))
        if self._last[1] != self.fd and self._last[1] not in self._users:  # else its last file closes it
            os.close(self._last[1])
        self._last = (name, inner)
        return inner

    def _fits(self, member: Member) -> bool:
        """Count *member*'s declared size; False if it declares a bomb or the files so far exceed the room."""
        if member.kind == "file":
            self.declared += member.size or 0
        bomb = over_ratio(member.size or 0, member.compressed_size, self.limits)
        return not bomb and (self.room is None or self.declared <= self.room)

    def own_problems(self, *, errors: bool) -> tuple[Problem, ...]:
        """What writing found that the checks may not have: names skipped (only if the checks found no
        *errors*, else those say it), and files over the free space."""
        found = [] if errors else [
            *(problem("unsafe-path", name, f"entry {quote(name)}: {why}") for name, why in self.unsafe),
            *(problem("duplicate-entry", name, f"entry {quote(name)}: clashes with an entry already written")
              for name in self.skipped)]
        if self.room is not None and self.declared > self.room:
            found.append(no_room(self.declared, self.room, self.parent))
        return tuple(found)

    def set_modes(self, members: tuple[Member, ...]) -> None:
        """Make executable the files whose mode was known only after they were written (zip from a pipe)."""
        for m in members:
            name = self.written.get(m.name)
            if name is not None and m.kind == "file" and (m.mode or 0) & 0o111:
                folder, _, leaf = name.rpartition("/")
                fd = os.open(leaf, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0), dir_fd=self._reach(folder))
                os.fchmod(fd, 0o755)
                os.close(fd)

    def commit(self, target: str, root: str | None, *, force: bool) -> None:
        """Put the tree (or its *root* folder) at *target*."""
        source = self.path
        if root is not None and normalize(root) != "":
            source = os.path.join(self.path, root)
            with contextlib.suppress(FileExistsError):
                os.mkdir(source, 0o755)
        os.chmod(source, 0o755)
        self._close()
        put_in_place(source, target, force=force)
        if source != self.path:
            remove_tree(self.path)

    def abort(self) -> None:
        """Remove everything written."""
        self._close()
        remove_tree(self.path)

    def _close(self) -> None:
        for fd in {self._last[1], self.fd, *self._users} - {-1}:
            os.close(fd)
        self.fd, self._last, self._users = -1, ("", -1), {}


def put_in_place(source: str, target: str, *, force: bool) -> None:
    holder = old = None
    try:
        if os.path.lexists(target) and not is_empty_folder(target):
            if not force:
                raise OutputError(f"{target}: appeared while unpacking and is not empty (use --force to replace it)")
            holder = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.markit-old-",
                                      dir=os.path.dirname(os.path.abspath(target)))
            old = os.path.join(holder, "old")
            os.rename(target, old)
        os.rename(source, target)
    except OSError as error:
        if old is not None and not os.path.lexists(target):
            os.rename(old, target)
        raise output_error(target, error) from None
    finally:
        if holder is not None:
            remove_tree(holder)  # never follows a link: the old DEST's links go with it

