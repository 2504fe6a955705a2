"""Finding an archive's format from its first bytes, and opening the reader for it.

The registry of formats, apart from the :class:`~markit.formats.base.Archive` base
so that the base never imports its implementations (fsspec's ``registry.py`` shape).
"""

from __future__ import annotations

import os
import stat
import sys

from markit.errors import ArchiveError
from markit.formats.base import Archive, ArchiveProblem
from markit.model.limits import Limits
from markit.model.problems import problem
from markit.storage.sources import ByteSource, open_file

__all__ = ["detect_format", "open_archive"]

HEAD = 512  # bytes looked at to find the format: one tar header block


def detect_format(head: bytes) -> str | None:
    """``zip``, ``tar.gz`` or ``tar`` from an archive's first bytes, or None."""
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if head[:2] == b"\x1f\x8b":
        return "tar.gz"
    if head[257:262] == b"ustar":
        return "tar"
    return None


def open_archive(path: str, limits: Limits | None = None) -> Archive:
    """The reader for *path* (a file, a folder, or ``-`` for stdin), chosen from its bytes.

    :class:`ArchiveProblem` (``not-an-archive``) if *path* does not exist, is not a regular file,
    a folder or ``-`` (a FIFO or a device would block or never end), or no format matches.
    """
    limits = limits or Limits()
    if path != "-" and _is_folder(path):
        from markit.formats.folder.reader import FolderArchive

        return FolderArchive(path, limits)
    file, size = (sys.stdin.buffer, None) if path == "-" else open_file(path)
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


def _is_folder(path: str) -> bool:
    """Whether *path* is a folder (True) or a regular file (False); anything else is refused."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ArchiveProblem(path, problem("not-an-archive", None, "no such file or folder")) from None
    except OSError as error:
        raise ArchiveError(f"{path}: cannot read ({error.strerror or error})") from None
    if stat.S_ISDIR(st.st_mode):
        return True
    if not stat.S_ISREG(st.st_mode):
        kind = "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode) else "a device"
        raise ArchiveProblem(path, problem("not-an-archive", None, f"{kind}, not a file or folder: markit reads"
                                           " regular files, folders and - (stdin)"))
    return False


def _reader(found: str, label: str, source: ByteSource, limits: Limits) -> Archive:
    if found == "zip":
        from markit.formats.zip.reader import ZipFileArchive
        from markit.formats.zip.stream import ZipStreamArchive

        if source.size is not None:
            return ZipFileArchive(source, label, limits)
        return ZipStreamArchive(source, label, limits)
    from markit.formats.tar.reader import TarArchive

    return TarArchive(source, label, limits, gzipped=found == "tar.gz")

