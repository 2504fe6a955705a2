"""Finding an archive's format from its first bytes, and opening the reader for it.

The registry of formats, apart from the :class:`~markit.formats.base.Archive` base
so that the base never imports its implementations (fsspec's ``registry.py`` shape).
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable

from markit.errors import ArchiveError, MarkitError
from markit.formats.base import Archive, ArchiveProblem
from markit.model.limits import Limits
from markit.model.problems import problem
from markit.storage.sources import ByteSource, open_file

__all__ = ["detect_format", "open_archive", "reader_for"]

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


def open_archive(path: str, limits: Limits | None = None, *, ranged: bool = False,
                 on_fetch: Callable[[int], None] | None = None, notice: Callable[[str], None] | None = None) -> Archive:
    """The reader for *path* (a file, a folder, ``-`` for stdin, or a URL), chosen from its bytes.

    :class:`ArchiveProblem` (``not-an-archive``) if *path* does not exist, is not a regular file,
    a folder or ``-`` (a FIFO or a device would block or never end), or no format matches.
    A URL is read in one pass (``verify``, ``unpack``: as from stdin, each byte fetched once), or with
    *ranged*, by range requests (``inspect``: a zip's ends and its MAR-INF files only); *on_fetch* is
    called with the bytes of each request, and *notice* with a line to show the user (a remote tar.gz
    that must be read through).
    """
    limits = limits or Limits()
    if "://" in path and _is_url(path):
        return _open_remote(path, limits, ranged=ranged, on_fetch=on_fetch, notice=notice)
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
    return reader_for(path, source, head, limits)


def reader_for(label: str, source: ByteSource, head: bytes, limits: Limits, *, indexed: bool = True) -> Archive:
    """The reader for *source*, whose first bytes are *head*; with *indexed*, a zip of known size is read by its
    central directory, else in order (as from a pipe)."""
    found = detect_format(head)
    if found is None:
        source.close()
        what = "it is empty" if not head else f"it starts with {head[:8].hex(' ')}"
        raise ArchiveProblem(label, problem("not-an-archive", None, f"not a zip, tar or tar.gz archive ({what})"))
    return _reader(found, label, source, limits, indexed=indexed)


def _is_url(path: str) -> bool:
    from markit.storage.remote import is_url  # only for a path that may be one: local start-up imports none of it

    return is_url(path)


def _open_remote(url: str, limits: Limits, *, ranged: bool, on_fetch: Callable[[int], None] | None,
                 notice: Callable[[str], None] | None) -> Archive:
    """The reader for a remote object: a zip by range requests if *ranged*, anything else in one pass."""
    from markit.storage.ranged import Fetched, RangeFile, StreamFile
    from markit.storage.remote import filesystem, remote_error

    fs, where = filesystem(url)
    try:
        found = fs.info(where)
    except FileNotFoundError:
        raise ArchiveProblem(url, problem("not-an-archive", None, "no such object")) from None
    except Exception as error:  # noqa: BLE001 - backends raise their own types
        raise remote_error(url, error) from None
    size = found.get("size")
    if found.get("type") == "directory" or not isinstance(size, int):
        what = "a folder" if found.get("type") == "directory" else "an object of unknown size"
        raise ArchiveProblem(url, problem("not-an-archive", None, f"{what}: markit reads remote archives"
                                          " (a zip, tar or tar.gz object), not remote folders"))
    fetched = Fetched(on_fetch=on_fetch)
    if ranged:
        ranges = RangeFile(fs, where, url, size, fetched)
        head = ranges.pread(HEAD, 0)
        if detect_format(head) in ("zip", "tar"):  # an index, or headers at known offsets
            return reader_for(url, ByteSource(ranges, size=size), head, limits)
        if detect_format(head) == "tar.gz" and notice is not None:
            notice(f"{url}: a tar.gz has no index: reading it through ({size:,} bytes)")
    source = ByteSource(StreamFile(fs, where, url, size, fetched), size=size)
    try:
        head = source.peek(HEAD)
    except MarkitError:
        source.close()
        raise
    return reader_for(url, source, head, limits, indexed=False)


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


def _reader(found: str, label: str, source: ByteSource, limits: Limits, *, indexed: bool) -> Archive:
    if found == "zip":
        from markit.formats.zip.reader import ZipFileArchive
        from markit.formats.zip.stream import ZipStreamArchive

        if source.size is not None and indexed:
            return ZipFileArchive(source, label, limits)
        return ZipStreamArchive(source, label, limits)
    from markit.formats.tar.reader import TarArchive

    return TarArchive(source, label, limits, gzipped=found == "tar.gz")

