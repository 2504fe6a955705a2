"""Names inside an archive: normalised, checked for safety, and the files both archivers leave out.

Pure functions of strings. ``create`` uses :func:`excluded_name` to leave files out;
``verify`` uses the same rule to warn about files the real tools let in, and
:func:`unsafe_reason` to refuse names that could land outside a destination.
"""

from __future__ import annotations

import re

from markit.model.manifest import MANIFEST_NAME
from markit.model.record import RECORD_NAME

__all__ = ["RESERVED_DIR", "captured_name", "excluded_name", "normalize", "unsafe_reason"]

RESERVED_DIR = "MAR-INF"  # markit writes its own; one in the input would clash with it
_DRIVE = re.compile(r"^[A-Za-z]:")


def normalize(name: str) -> str:
    """*name* with empty and ``.`` components dropped: ``./a//b/`` is ``a/b``."""
    return "/".join(part for part in name.split("/") if part not in ("", "."))


def unsafe_reason(name: str) -> str | None:
    """Why *name* cannot be written under a destination folder, or None if it can."""
    if name == "":
        return "the name is empty"
    if "\x00" in name:
        return "the name holds a NUL character"
    if "\\" in name:
        return "the name holds a backslash (a folder separator on Windows)"
    if name.startswith("/"):
        return "the name is an absolute path"
    if _DRIVE.match(name):
        return "the name starts with a drive letter"
    if ".." in name.split("/"):
        return "the name has a '..' component"
    return None


def captured_name(name: str) -> str | None:
    """``MAR-INF/MANIFEST.json`` or ``MAR-INF/RECORD`` if *name* is one, at the root or one folder down."""
    parts = normalize(name).split("/")
    tail = "/".join(parts[-2:])
    if tail in (MANIFEST_NAME, RECORD_NAME) and len(parts) <= 3:
        return tail
    return None


def excluded_name(part: str) -> str | None:
    """Why a file or folder named *part* (one path component) is left out, or None.

    These are the exclusions both model-archiver docs list: hidden files and
    folders, Mac system files, ``MANIFEST.json``, Python byte code.
    """
    if part == ".DS_Store":
        return "Mac system file .DS_Store"
    if part == "__MACOSX":
        return "Mac system folder __MACOSX"
    if part.startswith("."):
        return "hidden"
    if part == "__pycache__":
        return "Python byte-code cache __pycache__"
    if part.endswith(".pyc"):
        return "Python byte code (*.pyc)"
    if part == "MANIFEST.json":
        return "MANIFEST.json (the archive's own manifest is generated)"
    return None
