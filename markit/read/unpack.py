"""``unpack``: write an archive's files under a folder, only if ``verify`` finds no error.

Files are written under a fresh temporary folder beside DEST (mode 0700, made by
``mkdtemp``), checked while written (CRC-32, recorded SHA-256, declared sizes), and the
folder is renamed to DEST only when every check passed; on any error or interruption
it is removed, so DEST never holds half a tree and does not exist after a refusal.
Names are checked before anything is created, files are opened with
``O_CREAT | O_EXCL | O_NOFOLLOW``, and nothing but regular files and folders is ever
made, so no write can leave the temporary folder. ``--force`` replaces DEST: the old
one is moved aside, the new one renamed in, the old one removed; a link at DEST is
replaced, never followed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass

from markit.errors import ArchiveError, OutputError, UsageError
from markit.formats.base import Member
from markit.formats.detect import open_archive
from markit.model.limits import Limits
from markit.model.names import normalize, unsafe_reason
from markit.model.problems import ERROR, Problem, problem, quote
from markit.read.datacheck import FileOut
from markit.read.verify import read_archive
from markit.storage.sinks import output_error

__all__ = ["ARCHIVE_SUFFIXES", "Refused", "TempTree", "Unpacked", "check_target", "default_dest", "unpack"]

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".mar", ".tar", ".zip")


class Refused(ArchiveError):
    """``unpack`` found errors; nothing was written. :attr:`problems` holds every problem found."""

    def __init__(self, label: str, problems: tuple[Problem, ...]) -> None:
        errors = sum(p.severity == ERROR for p in problems)
        super().__init__(f"{label}: refused to unpack ({errors} error{'s' * (errors != 1)}); nothing was written")
        self.problems = problems


@dataclass(frozen=True)
class Unpacked:
    """What :func:`unpack` wrote."""

    dest: str
    """The folder the files are in."""
    files: int
    """Files written."""
    size: int
    """Bytes written."""
    problems: tuple[Problem, ...]
    """Warnings (there were no errors)."""


def default_dest(path: str) -> str | None:
    """``./<archive name without its suffix>`` (``.mar``, ``.tar.gz`` ...), or None for stdin.

    A name with none of those suffixes gets ``.unpacked`` appended, so DEST is never the archive itself.
    """
    if path == "-":
        return None
    base = os.path.basename(os.path.normpath(path))
    for suffix in ARCHIVE_SUFFIXES:
        if base.lower().endswith(suffix) and len(base) > len(suffix):
            return base[: -len(suffix)]
    return base + ".unpacked"


def _is_empty_folder(path: str) -> bool:
    return os.path.isdir(path) and not os.path.islink(path) and not os.listdir(path)


def _contains(outer: str, inner: str) -> bool:
    return inner == outer or inner.startswith(outer.rstrip(os.sep) + os.sep)


def check_target(target: str, *, force: bool, archive: str) -> None:
    """Refuse a DEST that cannot or must not be replaced; nothing is changed."""
    parent = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(parent):
        raise UsageError(f"-d {target}: the folder {parent} does not exist")
    if not os.path.lexists(target) or _is_empty_folder(target):
        return
    if not force:
        raise OutputError(f"{target}: already exists and is not an empty folder (use --force to replace it)")
    real = os.path.realpath(target) if not os.path.islink(target) else os.path.abspath(target)
    if real == os.path.realpath(os.sep) or _contains(real, os.path.realpath(os.getcwd())):
        raise OutputError(f"{target}: --force would remove the current folder or one above it; choose another -d")
    if archive != "-" and _contains(real, os.path.realpath(archive)):
        raise OutputError(f"{target}: --force would remove the archive being unpacked; choose another -d")


class _File:
    """One file being written into the temporary tree."""

    def __init__(self, tree: TempTree, fd: int, path: str, member: str, *, late_mode: bool) -> None:
        self.tree, self.fd, self.path, self.member = tree, fd, path, member
        self.late_mode = late_mode
        """Its mode is not known yet (a zip read from a pipe): remember the path for :meth:`TempTree.set_modes`."""

    def write(self, chunk: bytes | memoryview) -> None:
        view = memoryview(chunk)
        try:
            while view:
                view = view[os.write(self.fd, view) :]
        except OSError as error:
            raise output_error(f"{self.tree.label}: {self.member}", error) from None
        self.tree.size += len(chunk)

    def close(self, keep: bool) -> None:
        os.close(self.fd)
        if keep:
            self.tree.files += 1
            if self.late_mode:
                self.tree.written[self.member] = self.path
        else:
            os.unlink(self.path)


class TempTree:
    """A hidden temporary folder beside DEST that receives the members, then becomes DEST."""

    def __init__(self, parent: str, hint: str, label: str) -> None:
        self.label = label
        try:
            self.path = tempfile.mkdtemp(prefix=f".{hint}.markit-", suffix=".tmp", dir=parent)
        except OSError as error:
            raise output_error(parent, error) from None
        self.files = 0
        self.size = 0
        self.skipped: list[str] = []
        self.written: dict[str, str] = {}
        """Path of each file kept whose mode was unknown when it was created, by member name."""

    def open(self, member: Member) -> FileOut | None:
        """Make a folder, or create a file and return it for writing; unsafe or clashing names are skipped."""
        name = normalize(member.name)
        if unsafe_reason(member.name) is not None or not name or member.kind not in ("file", "dir"):
            return None
        path = os.path.join(self.path, *name.split("/"))
        try:
            if member.kind == "dir":
                os.makedirs(path, 0o755, exist_ok=True)
                return None
            os.makedirs(os.path.dirname(path), 0o755, exist_ok=True)
            mode = 0o755 if (member.mode or 0) & 0o111 else 0o644
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
        except (FileExistsError, NotADirectoryError, IsADirectoryError):
            self.skipped.append(member.name)  # a clash the duplicate check reports
            return None
        except OSError as error:
            raise output_error(f"{self.label}: {name}", error) from None
        return _File(self, fd, path, member.name, late_mode=member.mode is None)

    def set_modes(self, members: tuple[Member, ...]) -> None:
        """Make executable the files whose mode was known only after they were written (zip from a pipe)."""
        for m in members:
            path = self.written.get(m.name)
            if path is not None and m.kind == "file" and (m.mode or 0) & 0o111:
                os.chmod(path, 0o755)

    def commit(self, target: str, root: str | None, *, force: bool) -> None:
        """Put the tree (or its *root* folder) at *target*."""
        source = self.path if root is None or normalize(root) == "" else os.path.join(self.path, root)
        os.makedirs(source, 0o755, exist_ok=True)
        os.chmod(source, 0o755)
        _put_in_place(source, target, force=force)
        if source != self.path:
            shutil.rmtree(self.path, ignore_errors=True)

    def abort(self) -> None:
        """Remove everything written."""
        shutil.rmtree(self.path, ignore_errors=True)


def _put_in_place(source: str, target: str, *, force: bool) -> None:
    holder = old = None
    try:
        if os.path.lexists(target) and not _is_empty_folder(target):
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
            shutil.rmtree(holder, ignore_errors=True)  # never follows a link: the old DEST's links go with it


def _model_name(manifest: dict[str, object] | None) -> str:
    model = manifest.get("model") if manifest else None
    name = model.get("modelName") if isinstance(model, dict) else None
    if not isinstance(name, str):
        raise UsageError("-d is needed: the archive on stdin names no model")
    return name


def unpack(path: str, dest: str | None, *, force: bool, limits: Limits) -> Unpacked:
    """Unpack *path* into *dest* (default: :func:`default_dest`; for stdin, the model's name).

    :class:`Refused` (with every problem) if the archive has an error; DEST is then untouched.
    """
    target = dest or default_dest(path)
    if target is not None:
        check_target(target, force=force, archive=path)
    parent = os.path.dirname(os.path.abspath(target or "x"))
    with open_archive(path, limits) as archive:
        archive.index()  # a folder is walked before the temporary folder appears (it may be inside)
        tree = TempTree(parent, os.path.basename(target or "stdin"), path)
        try:
            reading = read_archive(archive, limits, writer=tree)
            problems = reading.problems + tuple(
                problem("duplicate-entry", name, f"entry {quote(name)}: clashes with an entry already written")
                for name in tree.skipped if not any(p.severity == ERROR for p in reading.problems))
            if any(p.severity == ERROR for p in problems):
                raise Refused(path, problems)
            if target is None:
                target = _model_name(reading.manifest)
                check_target(target, force=force, archive=path)
            tree.set_modes(reading.members)
            tree.commit(target, archive.root, force=force)
        except BaseException:
            tree.abort()
            raise
    return Unpacked(target, tree.files, tree.size, problems)
