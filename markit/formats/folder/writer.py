"""The ``no-archive`` format: the archive's files in a folder, written atomically.

Files go into a hidden temporary folder beside the target, which is renamed
into place on commit; an error or Ctrl-C removes it.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from markit.engine.datapass import Digest, Feed
from markit.errors import OutputError
from markit.storage.sinks import check_destination, output_error, temp_name_prefix

__all__ = ["FolderWriter"]


class FolderWriter:
    """Entries in, files out under a temporary folder that becomes *target*."""

    def __init__(self, target: str, *, force: bool) -> None:
        folder = check_destination(target, force=force, what="output folder")
        self.target = os.path.abspath(target)
        self.force = force
        try:
            self.temp = tempfile.mkdtemp(prefix=temp_name_prefix(target), suffix=".tmp", dir=folder)
        except OSError as error:
            raise output_error(folder, error) from None
        self._made = {self.temp}  # folders already created under the temporary one

    def _open(self, name: str, mode: int) -> tuple[str, int]:
        """The path of member *name* under the temporary folder, created and open for writing."""
        path = os.path.join(self.temp, *name.split("/"))
        folder = os.path.dirname(path)
        if folder not in self._made:
            os.makedirs(folder, exist_ok=True)
            self._made.add(folder)
        return path, os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)

    def add(self, name: str, size: int, mtime: float, mode: int, method: str, feed: Feed) -> Digest:
        """One file of *size* bytes whose data *feed* supplies."""
        try:
            path, fd = self._open(name, mode)
            try:
                digest = feed(lambda chunk: _write_all(fd, chunk))
            finally:
                os.close(fd)
            os.utime(path, (mtime, mtime))
        except OSError as error:
            raise output_error(f"{self.target}/{name}", error) from None
        return digest

    def add_whole(self, name: str, mtime: float, mode: int, method: str, data: bytes | memoryview,
                  digest: Digest) -> None:
        """One file whose bytes are all in *data* (*digest* is theirs)."""
        try:
            path, fd = self._open(name, mode)
            try:
                _write_all(fd, memoryview(data))
            finally:
                os.close(fd)
            os.utime(path, (mtime, mtime))
        except OSError as error:
            raise output_error(f"{self.target}/{name}", error) from None

    def finish(self) -> None:
        """Nothing to close: the files are complete."""

    def commit(self) -> None:
        """Put the folder in place (replacing an old one only with ``-f``)."""
        old = None
        if os.path.lexists(self.target) and not self.force:
            self.abort()
            raise OutputError(f"{self.target}: the output folder already exists (use -f to overwrite it)")
        try:
            os.chmod(self.temp, 0o755)
            if os.path.lexists(self.target):
                old = self.temp + ".old"
                os.rename(self.target, old)
            os.rename(self.temp, self.target)
        except OSError as error:
            self.abort()
            raise output_error(self.target, error) from None
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def abort(self) -> None:
        """Remove the temporary folder."""
        shutil.rmtree(self.temp, ignore_errors=True)


def _write_all(fd: int, chunk: memoryview) -> None:
    while chunk:
        chunk = chunk[os.write(fd, chunk) :]
