"""Where archive bytes go: a file written atomically, or a stream such as stdout.

A :class:`FileSink` writes to a temporary file beside the target and links it
into place only when the archive is complete; :meth:`Sink.abort` removes the
temporary file, so an error, a full disk or Ctrl-C leaves nothing behind.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import tempfile
from collections.abc import Sequence

from markit.errors import OutputError

__all__ = ["FileSink", "Sink", "StreamSink", "check_destination", "output_error", "temp_name_prefix"]

Buffer = bytes | bytearray | memoryview


def temp_name_prefix(target: str) -> str:
    """Temporary files for *target* start with this: hidden, and named after the target."""
    return f".{os.path.basename(target)}.markit-"


def _check_folder(folder: str, shown: str | None = None) -> None:
    """:class:`OutputError` unless *folder* is a writable folder; messages name it as *shown* (default: itself).

    A missing folder is not created: torch-model-archiver 0.12.0 and MMS model-archiver
    both refuse an ``--export-path`` that is not a folder, and a typo should not become one.
    """
    shown = shown or folder
    if not os.path.exists(folder):
        raise OutputError(f"{shown}: the export folder does not exist; create it first"
                          " (torch-model-archiver does not create it either)")
    if not os.path.isdir(folder):
        raise OutputError(f"{shown}: is a file, expected a folder to write the archive into")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{shown}: the export folder is not writable")


def check_destination(target: str, *, force: bool, what: str = "archive", shown: str | None = None) -> str:
    """The folder *target* goes into, after checking it can take *target*; *shown* names that folder in
    messages (e.g. ``--export-path model_store``)."""
    folder = os.path.dirname(os.path.abspath(target))
    _check_folder(folder, shown)
    if os.path.lexists(target) and not force:
        raise OutputError(f"{target}: the {what} already exists (use -f to overwrite it)")
    if os.path.isdir(target) and what == "archive":
        raise OutputError(f"{target}: is a folder, not an archive file")
    return folder


def _write_all(fd: int, buffers: Sequence[Buffer]) -> None:
    """Write every buffer in order, with as few system calls as the kernel allows."""
    views = [memoryview(b).cast("B") for b in buffers if len(b)]
    while views:
        n = os.writev(fd, views[:1024])  # IOV_MAX is 1024 on Linux
        while views and n >= len(views[0]):
            n -= len(views[0])
            views.pop(0)
        if n:
            views[0] = views[0][n:]


# Small writes (headers, small files) are gathered up to this many bytes and written in one call:
# 1 MiB, one chunk of a large file, where a system call per piece cost ~4 us for each 4 KiB member.
WRITE_BUFFER = 1 << 20
# A write call of at least this many bytes (a 1 MiB chunk, its stored blocks) is not copied: it goes
# out at once, after what is gathered, in one writev.
DIRECT_FROM = 64 << 10


class Sink:
    """Bytes written in order; :attr:`position` counts them.

    Writes smaller than :data:`DIRECT_FROM` are gathered in memory (copied, so the caller may
    reuse its buffer at once) and written out every :data:`WRITE_BUFFER` bytes, in the call that
    fills it; a larger write goes out at once, after what is gathered, in the same ``writev``.
    :meth:`flush` writes everything out and :meth:`commit` flushes first. :attr:`position` counts
    every byte given to :meth:`write`, gathered or not.
    """

    seekable = False
    name = "-"

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.position = 0
        self._gathered = bytearray()

    def write(self, *buffers: Buffer) -> None:
        """Append *buffers* (bytes, or memoryviews of bytes)."""
        size = 0
        for b in buffers:
            size += len(b)
        gathered = self._gathered
        if size < DIRECT_FROM and len(gathered) + size < WRITE_BUFFER:
            for b in buffers:
                gathered += b
        else:
            self._write_out(gathered, *buffers)
        self.position += size

    def flush(self) -> None:
        """Write out everything given so far."""
        if self._gathered:
            self._write_out(self._gathered)

    def _write_out(self, *buffers: Buffer) -> None:
        try:
            _write_all(self.fd, buffers)
        except OSError as error:
            raise output_error(self.name, error) from None
        finally:
            self._gathered = bytearray()  # written or lost: a sink that failed is abandoned

    @property
    def _written(self) -> int:
        """Bytes already handed to the kernel (before what is gathered)."""
        return self.position - len(self._gathered)

    def pwrite(self, data: bytes, offset: int) -> None:
        """Overwrite bytes already written at *offset* (seekable sinks only)."""
        raise NotImplementedError

    def truncate(self, offset: int) -> None:
        """Drop every byte from *offset* on, and write from there next (seekable sinks only)."""
        raise NotImplementedError

    def commit(self) -> None:
        """The archive is complete: write out what is gathered."""
        self.flush()

    def abort(self) -> None:
        """The archive will not be completed: drop what is gathered, undo what can be undone."""
        self._gathered = bytearray()


class StreamSink(Sink):
    """A pipe, terminal or socket: written in order, never sought."""

    def __init__(self, fd: int = 1, name: str = "stdout") -> None:
        super().__init__(fd)
        self.name = name
        _widen_pipe(fd)


PIPE_BUFFER = 1 << 20  # one chunk of markit.pump: a whole chunk goes into the pipe in one write


def _widen_pipe(fd: int) -> None:
    """Grow a pipe's buffer to :data:`PIPE_BUFFER` (Linux; within ``/proc/sys/fs/pipe-max-size``).

    With the default 64 KiB, writer and reader wake each other for every 64 KiB:
    measured on 2 GiB, ``create -o - | cat > file`` took 1.8-2.2 s, and 1.6-1.95 s
    with 1 MiB. A pipe already larger is left alone; a refusal (the per-user
    pipe quota, not Linux) leaves the default, which still works.
    """
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode) or fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ) >= PIPE_BUFFER:
            return
        with open("/proc/sys/fs/pipe-max-size", "rb") as f:
            limit = int(f.read())
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, min(PIPE_BUFFER, limit))
    except (OSError, ValueError, AttributeError):
        pass


class FileSink(Sink):
    """A regular file, written under a temporary name and put in place on commit."""

    seekable = True

    def __init__(self, target: str, *, force: bool) -> None:
        folder = check_destination(target, force=force)
        self.target = os.path.abspath(target)
        self.name = target
        self.force = force
        try:
            fd, self.temp = tempfile.mkstemp(prefix=temp_name_prefix(target), suffix=".tmp", dir=folder)
        except OSError as error:
            raise output_error(folder, error) from None
        super().__init__(fd)

    def pwrite(self, data: bytes, offset: int) -> None:
        start = offset - self._written
        if start >= 0 and offset + len(data) <= self.position:  # all in what is gathered: patched there
            self._gathered[start : start + len(data)] = data
            return
        if offset + len(data) > self._written:  # partly gathered: written out first
            self.flush()
        try:
            os.pwrite(self.fd, data, offset)
        except OSError as error:
            raise output_error(self.name, error) from None

    def truncate(self, offset: int) -> None:
        self.flush()
        try:
            os.ftruncate(self.fd, offset)
            os.lseek(self.fd, offset, os.SEEK_SET)
        except OSError as error:
            raise output_error(self.name, error) from None
        self.position = offset

    def commit(self) -> None:
        umask = os.umask(0)
        os.umask(umask)
        try:
            self.flush()
        except OutputError:
            self.abort()
            raise
        try:
            os.fchmod(self.fd, 0o666 & ~umask)
            os.close(self.fd)
            self.fd = -1
            if self.force:
                replace_file(self.temp, self.target)
            else:
                os.link(self.temp, self.target)  # fails if the target appeared meanwhile
                os.unlink(self.temp)
        except FileExistsError:
            self.abort()
            raise OutputError(f"{self.name}: the archive already exists (use -f to overwrite it)") from None
        except OSError as error:
            self.abort()
            raise output_error(self.name, error) from None

    def abort(self) -> None:
        super().abort()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        try:
            os.unlink(self.temp)
        except FileNotFoundError:
            pass


def output_error(name: str, error: OSError) -> OutputError:
    if error.errno == errno.ENOSPC:
        return OutputError(f"{name}: no space left on the device; nothing was kept")
    if error.errno == errno.EPIPE:
        return OutputError(f"{name}: the reading end of the pipe was closed")
    return OutputError(f"{name}: cannot write ({error.strerror or error})")


RENAME_EXCHANGE = 2  # linux/fs.h: swap two names atomically
_AT_FDCWD = -100


def replace_file(temp: str, target: str) -> None:
    """Put the complete file *temp* at *target*, atomically, without the flush ext4 does on a replace.

    ext4 (``auto_da_alloc``) writes out a file's delayed allocation when a rename replaces an
    existing file: 4.2 s of a 9.2 s ``create -f`` of 2 GiB (docs/design.md, "Overwriting").
    Swapping the two names with ``renameat2(RENAME_EXCHANGE)`` is as atomic (a reader sees the
    old archive or the new one, never neither) and is not a replace, so nothing is flushed; the
    old archive, now under the temporary name, is then unlinked. Where the call or the filesystem
    does not support it, or there is nothing to swap with, :func:`os.replace`.
    """
    if _exchange(temp, target):
        os.unlink(temp)
    else:
        os.replace(temp, target)


def _exchange(first: str, second: str) -> bool:
    """Swap two paths' names with renameat2; False if it cannot be done here (then nothing changed)."""
    try:
        import ctypes

        call = ctypes.CDLL(None, use_errno=True).renameat2
    except (ImportError, OSError, AttributeError):  # not Linux, or glibc < 2.28
        return False
    return bool(call(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), RENAME_EXCHANGE) == 0)
