"""The rules that decide, per file, how it is compressed and whether an ``--exclude`` glob leaves it out.

Pure functions of names and sizes, called by the planner. The exclusions both
archivers share (hidden files, byte code...) are :func:`markit.model.names.excluded_name`.
"""

from __future__ import annotations

import fnmatch
from pathlib import PurePosixPath

__all__ = [
    "AUTO_DEFLATE_MAX",
    "DEFLATE_SUFFIXES",
    "STORE_SUFFIXES",
    "choose_method",
    "excluded_by_glob",
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
    parts = PurePosixPath(name).parts
    for glob in globs:
        pattern = glob.rstrip("/")
        if fnmatch.fnmatchcase(name, pattern):
            return f"--exclude {glob}"
        if "/" not in pattern and any(fnmatch.fnmatchcase(part, pattern) for part in parts):
            return f"--exclude {glob}"
        if "/" in pattern and any(
            fnmatch.fnmatchcase("/".join(parts[:i]), pattern) for i in range(1, len(parts))
        ):
            return f"--exclude {glob}"
    return None


def choose_method(name: str, size: int, compression: str) -> tuple[str, str]:
    """``("store"|"deflate", why)`` for an entry, under ``--compression`` *compression*.

    ``auto``: deflate text and code suffixes, store weight and compressed-data
    suffixes, and for any other suffix deflate files up to 1 MiB and store larger ones.
    """
    if compression in ("store", "deflate"):
        return compression, f"--compression {compression}"
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in DEFLATE_SUFFIXES:
        return "deflate", f"text suffix {suffix}"
    if suffix in STORE_SUFFIXES:
        return "store", f"weights/compressed suffix {suffix}"
    if size <= AUTO_DEFLATE_MAX:
        return "deflate", "small file (<= 1 MiB)"
    return "store", "large file of unknown type (> 1 MiB)"
