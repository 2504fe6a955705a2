"""What is on disk, recorded once: the inputs' files with their sizes and modes.

The scanner is the only part of ``create`` that lists folders; everything after it
works on these records. Files are listed in sorted order, symlinks to files and
folders are followed (Hugging Face snapshot folders are symlinks into a blob store),
and a dangling link or a loop is an :class:`InputError` that names the path.
"""

from __future__ import annotations

import errno
import glob
import os
import stat
from dataclasses import dataclass

from markit.errors import InputError
from markit.model.names import excluded_name

__all__ = ["Input", "Skipped", "SourceFile", "expand", "scan_input", "split_extra_files"]


@dataclass(frozen=True)
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


@dataclass(frozen=True)
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
    matches = sorted(glob.glob(given))
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


def _source(name: str, path: str, st: os.stat_result) -> SourceFile:
    real = os.path.realpath(path)
    return SourceFile(name, real, st.st_size, stat.S_IMODE(st.st_mode), st.st_mtime)


def scan_input(flag: str, given: str) -> Input:
    """Scan one input: a file, or a folder walked in sorted order."""
    st = _stat(given, f"{flag} {given}")
    if stat.S_ISREG(st.st_mode):
        return Input(flag, given, False, (_source(os.path.basename(given), given, st),))
    if not stat.S_ISDIR(st.st_mode):
        raise InputError(f"{flag} {given}: not a regular file or folder")
    files: list[SourceFile] = []
    skipped: list[Skipped] = []
    _walk(given, "", {(st.st_dev, st.st_ino)}, files, skipped)
    return Input(flag, given, True, tuple(files), tuple(skipped))


def _walk(
    folder: str,
    prefix: str,
    ancestors: set[tuple[int, int]],
    files: list[SourceFile],
    skipped: list[Skipped],
) -> None:
    try:
        names = sorted(os.listdir(folder))
    except OSError as error:
        raise InputError(f"{folder}: cannot list folder ({error.strerror})") from None
    for entry in names:
        path = os.path.join(folder, entry)
        name = prefix + entry
        st = _stat(path, path)
        if stat.S_ISDIR(st.st_mode):
            reason = excluded_name(entry)
            if reason is not None:
                skipped.append(Skipped(name, os.path.abspath(path), f"folder: {reason}"))
                continue
            key = (st.st_dev, st.st_ino)
            if key in ancestors:
                raise InputError(f"{path}: symlink loop (it leads back to a folder above it)")
            _walk(path, name + "/", ancestors | {key}, files, skipped)
        elif stat.S_ISREG(st.st_mode):
            files.append(_source(name, path, st))
        else:
            skipped.append(Skipped(name, os.path.abspath(path), "not a regular file or folder"))
