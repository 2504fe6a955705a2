"""``unpack``: write an archive's files under a folder, only if ``verify`` finds no error.

Files are written under a fresh temporary folder beside DEST (mode 0700, made by
``mkdtemp``), checked while written (CRC-32, recorded SHA-256, declared sizes), and the
folder is renamed to DEST only when every check passed; on any error or interruption
it is removed, so DEST never holds half a tree and does not exist after a refusal.
Names are checked before anything is created, files are opened with
``O_CREAT | O_EXCL | O_NOFOLLOW``, and nothing but regular files and folders is ever
made, so no write can leave the temporary folder. ``--force`` replaces DEST: the old
one is moved aside, the new one renamed in, the old one removed; a link at DEST is
replaced, never followed. The tree itself is :mod:`markit.read.tree`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from markit.errors import ArchiveError, OutputError, UsageError
from markit.formats.detect import open_archive
from markit.model.limits import Limits
from markit.model.problems import ERROR, Problem
from markit.read.tree import TempTree, free_space, is_empty_folder, no_room
from markit.read.verify import read_archive

__all__ = ["ARCHIVE_SUFFIXES", "Refused", "Unpacked", "check_target", "default_dest", "unpack"]

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".mar", ".war", ".tar", ".zip")


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
    if "://" in path:  # a URL: its last path segment, without a query (a presigned URL's signature) or fragment
        path = path.split("?", 1)[0].split("#", 1)[0].rstrip("/")
    base = os.path.basename(os.path.normpath(path))
    for suffix in ARCHIVE_SUFFIXES:
        if base.lower().endswith(suffix) and len(base) > len(suffix):
            return base[: -len(suffix)]
    return base + ".unpacked"


def _contains(outer: str, inner: str) -> bool:
    return inner == outer or inner.startswith(outer.rstrip(os.sep) + os.sep)


def check_target(target: str, *, force: bool, archive: str) -> None:
    """Refuse a DEST that cannot or must not be replaced; nothing is changed."""
    parent = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(parent):
        raise UsageError(f"-d {target}: the folder {parent} does not exist")
    if not os.path.lexists(target) or is_empty_folder(target):
        return
    if not force:
        raise OutputError(f"{target}: already exists and is not an empty folder (use --force to replace it)")
    real = os.path.realpath(target) if not os.path.islink(target) else os.path.abspath(target)
    if real == os.path.realpath(os.sep) or _contains(real, os.path.realpath(os.getcwd())):
        raise OutputError(f"{target}: --force would remove the current folder or one above it; choose another -d")
    if archive != "-" and _contains(real, os.path.realpath(archive)):
        raise OutputError(f"{target}: --force would remove the archive being unpacked; choose another -d")


def _model_name(manifest: dict[str, object] | None) -> str:
    """The model's name (``model.modelName``), or a workflow's (``workflow.workflowName``)."""
    model = manifest.get("model") if manifest else None
    workflow = manifest.get("workflow") if manifest else None
    name = model.get("modelName") if isinstance(model, dict) else None
    if name is None and isinstance(workflow, dict):
        name = workflow.get("workflowName")
    if not isinstance(name, str):
        raise UsageError("-d is needed: the archive on stdin names no model")
    return name


def unpack(path: str, dest: str | None, *, force: bool, limits: Limits,
           progress: Callable[[int, int], None] | None = None) -> Unpacked:
    """Unpack *path* into *dest* (default: :func:`default_dest`; for stdin, the model's name).

    :class:`Refused` (with every problem) if the archive has an error or its files do not fit
    in the free space where DEST goes; DEST is then untouched.
    """
    target = dest or default_dest(path)
    if target is not None:
        check_target(target, force=force, archive=path)
    parent = os.path.dirname(os.path.abspath(target or "x"))
    room = free_space(parent)
    with open_archive(path, limits) as archive:
        index = archive.index()  # a folder is walked before the temporary folder appears (it may be inside)
        declared = sum(m.size or 0 for m in index or () if m.kind == "file")
        if room is not None and declared > room:
            raise Refused(path, (no_room(declared, room, parent),))
        tree = TempTree(parent, os.path.basename(target or "stdin"), path, limits=limits, room=room)
        try:
            reading = read_archive(archive, limits, writer=tree, progress=progress)
            problems = reading.problems + tree.own_problems(errors=any(p.severity == ERROR for p in reading.problems))
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
