"""Names inside an archive: normalised, checked for safety, and the files both archivers leave out.

Pure functions of strings. ``create`` uses :func:`excluded_name` to leave files out;
``verify`` uses the same rule to warn about files the real tools let in, and
:func:`unsafe_reason` to refuse names that could land outside a destination or that
no filesystem can create (:data:`NAME_MAX_BYTES`, :data:`PART_MAX_BYTES`).
"""

from __future__ import annotations

import re

from markit.model.manifest import MANIFEST_NAME
from markit.model.record import RECORD_NAME

__all__ = [
    "NAME_MAX_BYTES",
    "PART_MAX_BYTES",
    "RESERVED_DIR",
    "captured_name",
    "excluded_name",
    "normalize",
    "too_long",
    "unsafe_reason",
]

RESERVED_DIR = "MAR-INF"  # markit writes its own; one in the input would clash with it
NAME_MAX_BYTES = 4096  # UTF-8 bytes of a whole name: Linux's PATH_MAX, so no tool can create a longer one
PART_MAX_BYTES = 255  # UTF-8 bytes of one component: NAME_MAX of ext4, XFS, btrfs, tmpfs, APFS
_DRIVE = re.compile(r"^[A-Za-z]:")


def normalize(name: str) -> str:
    """*name* with empty and ``.`` components dropped: ``./a//b/`` is ``a/b``."""
    core = name.removesuffix("/")
    wrapped = f"/{core}/"
    if "//" not in wrapped and "/./" not in wrapped:  # the usual case, in C: nothing to drop
        return core
    return "/".join(part for part in name.split("/") if part not in ("", "."))


def _utf8(text: str) -> bytes:
    """*text* in UTF-8; a name decoded with ``surrogateescape`` gets its original bytes back."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that is no escaped byte: 3 bytes, as CESU would write it
        return text.encode("utf-8", "surrogatepass")


def too_long(name: str) -> str | None:
    """Why *name* is longer than any filesystem takes (whole or in one component), or None.

    Cheap and linear in the name's length: every other check of a name runs only after this
    one passed, so none of them costs more than a few times :data:`NAME_MAX_BYTES`.
    """
    if len(name) > NAME_MAX_BYTES or len(raw := _utf8(name)) > NAME_MAX_BYTES:
        return f"the name is over {NAME_MAX_BYTES:,} bytes (no filesystem can create it)"
    if len(raw) > PART_MAX_BYTES and max(map(len, raw.split(b"/"))) > PART_MAX_BYTES:  # '/' is one byte in UTF-8
        return f"a component of the name is over {PART_MAX_BYTES} bytes (no filesystem can create it)"
    return None


def unsafe_reason(name: str) -> str | None:
    """Why *name* cannot be written under a destination folder, or None if it can.

    The length (:func:`too_long`) is checked first, before any other work on the name.
    """
    if (reason := too_long(name)) is not None:
        return reason
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
