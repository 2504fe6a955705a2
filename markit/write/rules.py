"""The rules that decide, per file, how it is compressed and whether an ``--exclude`` glob leaves it out.

Pure functions of names and sizes, called by the planner once per file, so they
work on strings (no ``pathlib``) and ``--exclude`` globs are compiled once
(:func:`glob_rule`). The exclusions both archivers share (hidden files, byte
code...) are :func:`markit.model.names.excluded_name`.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Callable

__all__ = [
    "AUTO_DEFLATE_MAX",
    "DEFLATE_SUFFIXES",
    "STORE_SUFFIXES",
    "choose_method",
    "excluded_by_glob",
    "glob_rule",
    "suffix",
]

# Suffixes that hold text or code: deflate shrinks them 3-10x at negligible cost.
DEFLATE_SUFFIXES = frozenset(
    [".py", ".pyi", ".json", ".jsonl", ".txt", ".md", ".rst", ".csv", ".tsv", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".conf", ".properties", ".xml", ".html", ".htm", ".js", ".ts", ".sh", ".proto", ".pbtxt", ".vocab", ".merges", ".tiktoken", ".spm", ".sql", ".svg"]
)
# Suffixes of weights and already-compressed data: deflate saves 0-7% on them at 30 MB/s
# (zlib) where storing runs at disk speed, so they are stored.
STORE_SUFFIXES = frozenset(
    [".bin", ".pt", ".pth", ".ckpt", ".safetensors", ".params", ".onnx", ".pb", ".h5", ".hdf5", ".npy", ".npz", ".gguf", ".ggml", ".tflite", ".engine", ".plan", ".trt", ".mlmodel", ".pkl", ".pickle", ".joblib", ".msgpack", ".model", ".zip", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".7z", ".mar", ".jpg", ".jpeg", ".png", ".gif", ".webp", ".mp3", ".mp4", ".wav", ".flac", ".ogg"]
)
# A file with any other suffix is deflated up to this size and stored above it:
# 1 MiB: deflating that much costs at most ~40 ms even with zlib, whatever the data.
AUTO_DEFLATE_MAX = 1 << 20


def excluded_by_glob(name: str, globs: tuple[str, ...]) -> str | None:
    """The first ``--exclude`` glob that matches archive *name* or its base name, or None.

    A glob matches the whole archive name (``weights/*.bin``) or, if it has no
    slash, any single component (``*.log``, ``tmp``), so a folder glob drops
    everything under that folder.
    """
    return glob_rule(globs)(name)


@functools.lru_cache(maxsize=8)
def glob_rule(globs: tuple[str, ...]) -> Callable[[str], str | None]:
    """:func:`excluded_by_glob` for these *globs*, compiled once: a function of the name alone.

    Every glob is translated (``fnmatch.translate``) into one regular expression per way a
    glob can match: the whole name, any component, any leading folders. A name none of the
    three matches (nearly all of them) is decided by at most three C-level matches; one
    that matches goes through the globs in order, so the reason names the first.
    """
    if not globs:
        return _never
    patterns = [glob.rstrip("/") for glob in globs]
    whole = _any(patterns)
    part = _any([p for p in patterns if "/" not in p])
    folders = _any([p for p in patterns if "/" in p])

    def rule(name: str) -> str | None:
        parts = name.split("/")
        if not (whole(name) or any(map(part, parts))
                or any(folders("/".join(parts[:i])) for i in range(1, len(parts)))):
            return None
        return _first(name, parts, globs, patterns)

    return rule


def _never(name: str) -> None:
    return None


def _any(patterns: list[str]) -> Callable[[str], object]:
    """A function telling whether a string matches any of *patterns* whole (as ``fnmatch.fnmatchcase``)."""
    if not patterns:
        return _never
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns)).match


def _first(name: str, parts: list[str], globs: tuple[str, ...], patterns: list[str]) -> str | None:
    """The first glob that matches *name* whole, a component of it (no slash), or its leading folders (a slash)."""
    for glob, pattern in zip(globs, patterns):
        match = re.compile(fnmatch.translate(pattern)).match
        if match(name):
            return f"--exclude {glob}"
        if "/" not in pattern and any(map(match, parts)):
            return f"--exclude {glob}"
        if "/" in pattern and any(match("/".join(parts[:i])) for i in range(1, len(parts))):
            return f"--exclude {glob}"
    return None


def suffix(name: str) -> str:
    """The suffix of *name*'s last component, as ``PurePosixPath(name).suffix`` gives it (``.bin``, or "")."""
    base = name.rpartition("/")[2]
    dot = base.rfind(".")
    return base[dot:] if 0 < dot < len(base) - 1 else ""


def choose_method(name: str, size: int, compression: str) -> tuple[str, str]:
    """``("store"|"deflate", why)`` for an entry, under ``--compression`` *compression*.

    ``auto``: deflate text and code suffixes, store weight and compressed-data
    suffixes, and for any other suffix deflate files up to 1 MiB and store larger ones.
    """
    if compression in ("store", "deflate"):
        return compression, f"--compression {compression}"
    lower = suffix(name).lower()
    if lower in DEFLATE_SUFFIXES:
        return "deflate", f"text suffix {lower}"
    if lower in STORE_SUFFIXES:
        return "store", f"weights/compressed suffix {lower}"
    if size <= AUTO_DEFLATE_MAX:
        return "deflate", "small file (<= 1 MiB)"
    return "store", "large file of unknown type (> 1 MiB)"
