"""What is on disk, recorded once: the inputs' files with their sizes and modes.

The scanner is the only part of ``create`` that lists folders; everything after it
works on these records. Files are listed in sorted order, symlinks to files and
folders are followed (Hugging Face snapshot folders are symlinks into a blob store),
and a dangling link or a loop is an :class:`InputError` that names the path.

Folders are listed with ``os.scandir``, whose entries say whether they are links,
files or folders without a system call; a file costs one ``stat`` (its size, mode
and time). Only a symlink is resolved (``os.path.realpath``); any other entry's real
path is its folder's, resolved once, joined with its name. The walk keeps its own
stack, so a deep tree needs no recursion.
"""

from __future__ import annotations

import errno
import glob
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from stat import S_IMODE, S_ISDIR, S_ISREG

from markit.errors import InputError
from markit.model.names import excluded_name
from markit.storage.remote import is_url

__all__ = ["Input", "Skipped", "SourceFile", "expand", "scan_input", "split_extra_files"]


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A regular file found in an input."""

    name: str
    """Its path relative to the input folder, '/'-separated; a file input's base name."""
    path: str
    """Where to read it: absolute, every symlink resolved."""
    size: int
    """Bytes, from stat at scan time."""
    mode: int
    """``st_mode`` permission bits."""
    mtime: float
    """Modification time, seconds since the epoch."""


@dataclass(frozen=True, slots=True)
class Skipped:
    """Something in an input folder that the scanner did not read or descend into."""

    name: str
    """Its path relative to the input folder."""
    path: str
    """Its absolute path."""
    reason: str
    """Why: an exclusion rule, or not a regular file."""


@dataclass(frozen=True)
class Input:
    """One input the user named, and what it holds."""

    flag: str
    """The option that named it: ``--model-path``, ``--serialized-file``, ..."""
    given: str
    """The path as the user typed it."""
    is_dir: bool
    """A folder (its contents go to the archive root) or a single file."""
    files: tuple[SourceFile, ...]
    """Its files, sorted by name."""
    skipped: tuple[Skipped, ...] = ()
    """Folders not descended and entries that are not regular files."""


def split_extra_files(value: str) -> list[str]:
    """The items of a ``--extra-files`` comma list, blanks dropped."""
    return [item.strip() for item in value.split(",") if item.strip()]


def expand(flag: str, given: str) -> list[str]:
    """*given*, or its glob matches sorted; :class:`InputError` if a glob matches nothing."""
    if not glob.has_magic(given):
        return [given]
    matches = sorted(_glob_remote(flag, given) if is_url(given) else glob.glob(given))
    if not matches:
        raise InputError(f"{flag} {given}: the pattern matches no file")
    return matches


def _stat(path: str, shown: str) -> os.stat_result:
    try:
        return os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise InputError(f"{shown}: dangling symlink to {os.readlink(path)}") from None
        raise InputError(f"{shown}: no such file or folder") from None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise InputError(f"{shown}: symlink loop") from None
        raise InputError(f"{shown}: cannot read ({error.strerror})") from None


def scan_input(flag: str, given: str) -> Input:
    """Scan one input: a file, or a folder walked in sorted order (a URL: listed once)."""
    if is_url(given):
        return _scan_remote(flag, given)
    st = _stat(given, f"{flag} {given}")
    if stat.S_ISREG(st.st_mode):
        real = os.path.realpath(given)
        return Input(flag, given, False, (SourceFile(os.path.basename(given), real, st.st_size,
                                                     stat.S_IMODE(st.st_mode), st.st_mtime),))
    if not stat.S_ISDIR(st.st_mode):
        raise InputError(f"{flag} {given}: not a regular file or folder")
    files: list[SourceFile] = []
    skipped: list[Skipped] = []
    _walk(given, os.path.realpath(given), (st.st_dev, st.st_ino), files, skipped)
    return Input(flag, given, True, tuple(files), tuple(skipped))


@dataclass(slots=True)
class _Level:
    """A folder being walked: its entries still to see, and where its files' names and real paths start."""

    entries: Iterator[os.DirEntry[str]]
    prefix: str
    real: str
    key: tuple[int, int]


def _listed(folder: str, prefix: str, real: str, key: tuple[int, int]) -> _Level:
    try:
        with os.scandir(folder) as found:
            entries = sorted(found, key=lambda entry: entry.name)
    except OSError as error:
        raise InputError(f"{folder}: cannot list folder ({error.strerror})") from None
    return _Level(iter(entries), prefix, real if real.endswith("/") else real + "/", key)


def _walk(folder: str, real: str, key: tuple[int, int], files: list[SourceFile], skipped: list[Skipped]) -> None:
    """Depth first, each folder's entries sorted by name, as a recursive walk would go; *real* is *folder* resolved.

    A folder's entries are taken in a loop that stops at a subfolder; the subfolder is walked, then
    the loop resumes where it stopped (the iterator keeps its place).
    """
    stack = [_listed(folder, "", real, key)]
    ancestors = {key}
    while stack:
        level = stack[-1]
        for entry in level.entries:
            name = level.prefix + entry.name
            path = entry.path
            linked = entry.is_symlink()
            st = _stat(path, path) if linked else _entry_stat(entry)
            if S_ISREG(st.st_mode):
                where = os.path.realpath(path) if linked else level.real + entry.name
                files.append(SourceFile(name, where, st.st_size, S_IMODE(st.st_mode), st.st_mtime))
            elif S_ISDIR(st.st_mode):
                reason = excluded_name(entry.name)
                if reason is not None:
                    skipped.append(Skipped(name, os.path.abspath(path), f"folder: {reason}"))
                    continue
                inner = (st.st_dev, st.st_ino)
                if inner in ancestors:
                    raise InputError(f"{path}: symlink loop (it leads back to a folder above it)")
                ancestors.add(inner)
                where = os.path.realpath(path) if linked else level.real + entry.name
                stack.append(_listed(path, name + "/", where, inner))
                break
            else:
                skipped.append(Skipped(name, os.path.abspath(path), "not a regular file or folder"))
        else:
            ancestors.discard(stack.pop().key)


def _entry_stat(entry: os.DirEntry[str]) -> os.stat_result:
    """An entry that is not a symlink: its stat (one system call); on error, the messages of :func:`_stat`."""
    try:
        return entry.stat()
    except OSError:
        return _stat(entry.path, entry.path)


def _scan_remote(flag: str, given: str) -> Input:
    """A URL: one object, or a remote folder listed once (names, sizes), its excluded folders skipped as a local
    walk skips them. Objects have no mode: 0644, as a plain file; their time is the store's last-modified."""
    from markit.storage.inputs import list_remote

    is_dir, found = list_remote(flag, given)
    files: list[SourceFile] = []
    skipped: dict[str, Skipped] = {}
    for f in found:
        parts = f.name.split("/")
        if not is_dir:
            files.append(SourceFile(f.name, f.url, f.size, 0o644, f.mtime))
            continue
        if any(p in ("", ".", "..") for p in parts):
            skipped.setdefault(f.name, Skipped(f.name, f.url, "not a usable file name (empty, . or .. in it)"))
            continue
        folder = next((i for i, p in enumerate(parts[:-1]) if excluded_name(p) is not None), None)
        if folder is None:
            files.append(SourceFile(f.name, f.url, f.size, 0o644, f.mtime))
        else:
            name = "/".join(parts[: folder + 1])
            reason = f"folder: {excluded_name(parts[folder])}"
            skipped.setdefault(name, Skipped(name, given.rstrip("/") + "/" + name, reason))
    return Input(flag, given, is_dir, tuple(files), tuple(skipped.values()))


def _glob_remote(flag: str, pattern: str) -> list[str]:
    """The URLs a remote ``--extra-files`` glob matches (one listing by the store)."""
    from markit.storage.inputs import glob_urls

    return glob_urls(flag, pattern)
