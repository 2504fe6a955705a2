"""Read a zip the way TorchServe's Java frontend does, as an oracle for markit's ``.mar`` files.

TorchServe unpacks a ``.mar`` with ``java.util.zip.ZipInputStream``, which walks the local
headers and never looks at the central directory; Python's ``zipfile`` reads the central
directory, so it accepts archives the server refuses. ``tests/java/ZipInputStreamCheck.java``
does what the server does; :func:`read_with_zipinputstream` runs it.

Launching the source file (``java File.java``) compiles it on every run (about 1.3 s here), so
the first call compiles it once with ``javac`` into a temporary folder and later calls run the
class (about 0.1 s). Without ``javac`` it falls back to source launch. Without ``java`` the
calling test is skipped.
"""

from __future__ import annotations

import atexit
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import NamedTuple

import pytest

__all__ = ["CHECKER_SOURCE", "JavaZipError", "ZipEntryInfo", "java_command", "read_with_zipinputstream"]

CHECKER_SOURCE = Path(__file__).resolve().parents[1] / "java" / "ZipInputStreamCheck.java"
_CLASS_NAME = "ZipInputStreamCheck"
_TIMEOUT = 120.0

_command: list[str] | None = None


class ZipEntryInfo(NamedTuple):
    """One entry as ZipInputStream delivered it: name, bytes read, CRC-32 and SHA-256 (hex)."""

    name: str
    size: int
    crc32: str
    sha256: str


class JavaZipError(Exception):
    """ZipInputStream refused the archive; ``java_class`` and ``java_message`` say how."""

    def __init__(self, path: Path, java_class: str, java_message: str) -> None:
        super().__init__(f"ZipInputStream refused {path}: {java_class}: {java_message}")
        self.path = path
        self.java_class = java_class
        self.java_message = java_message


def java_command() -> list[str]:
    """The command that runs the checker (without the file argument); skips if no ``java``."""
    global _command
    if _command is not None:
        return _command
    java = shutil.which("java")
    if java is None:
        pytest.skip("java is not on PATH")
    javac = shutil.which("javac")
    if javac is None:
        _command = [java, str(CHECKER_SOURCE)]
        return _command
    out = Path(tempfile.mkdtemp(prefix="markit-zipcheck-"))
    atexit.register(shutil.rmtree, out, True)
    subprocess.run(
        [javac, "-d", str(out), str(CHECKER_SOURCE)],
        check=True,
        capture_output=True,
        timeout=_TIMEOUT,
    )
    _command = [java, "-cp", str(out), _CLASS_NAME]
    return _command


def read_with_zipinputstream(path: str | Path) -> list[ZipEntryInfo]:
    """The entries of zip *path* as TorchServe's frontend reads them, in stream order.

    Raises :class:`JavaZipError` carrying Java's exception class and message if
    ``ZipInputStream`` fails, and ``RuntimeError`` if the checker itself misbehaves.
    """
    path = Path(path)
    proc = subprocess.run(
        [*java_command(), str(path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=_TIMEOUT,
    )
    if proc.returncode == 1 and proc.stderr.startswith("ERROR: "):
        java_class, _, message = proc.stderr.strip()[len("ERROR: ") :].partition(": ")
        raise JavaZipError(path, java_class, message)
    if proc.returncode != 0:
        raise RuntimeError(f"ZipInputStreamCheck exited {proc.returncode} on {path}: {proc.stderr.strip()}")
    entries = []
    for line in proc.stdout.splitlines():
        name, size, crc, sha = line.split("\t")
        entries.append(ZipEntryInfo(name, int(size), crc, sha))
    return entries
