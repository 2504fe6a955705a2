"""Where a markit command's time goes: a cProfile run sorted into kinds of work, and import times.

cProfile sees the main thread only. Work a command hands to other threads shows up as the main
thread waiting (locks, queues, joins), and the timed runs' CPU/wall says how busy both cores were.
"""

from __future__ import annotations

import os
import pstats
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Imports", "Profile", "import_times", "profile_command"]

TOP = 8  # functions (and imports) listed per profile

# (kind, substrings of a pstats function label); the first match wins
KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("SHA-256", ("_hashlib.HASH", "openssl_sha256", "hashlib")),
    ("CRC-32", ("crc32",)),
    ("deflate", ("compress", "Compress", "flush' of", "zlib")),
    ("read", ("readv", "readinto", "posix.read", "preadv", "'read' of")),
    ("write", ("writev", "posix.write", "pwrite", "'write' of", "sendfile", "copy_file_range", "splice")),
    ("wait on threads", ("acquire", "'wait'", "'join'", "_thread.lock", "queue")),
    ("start-up, imports", ("<frozen importlib", "marshal.loads", "_imp.", "<module>", "builtins.exec")),
)


@dataclass(frozen=True)
class Profile:
    """One command's cProfile, summarised."""

    label: str
    wall: float
    """The profiled run's wall, seconds (profiling adds a little)."""
    kinds: list[tuple[str, float]]
    """Seconds of main-thread time per kind of work, largest first, ``other Python`` included."""
    top: list[tuple[str, int, float, float]]
    """(function, calls, own seconds, cumulative seconds) of the costliest functions."""


def _kind(label: str) -> str:
    for kind, needles in KINDS:
        if any(n in label for n in needles):
            return kind
    return "other Python"


def _label(func: tuple[str, int, str]) -> str:
    file, line, name = func
    if file == "~":
        return name  # a builtin: "<method 'update' of '_hashlib.HASH' objects>"
    return f"{name} ({Path(file).name}:{line})"


def profile_command(label: str, argv: list[str], env: dict[str, str], out: Path) -> Profile | None:
    """Run ``python -m cProfile`` over *argv* (which starts ``python -m markit``); None if it failed."""
    stats_file = out / "profile.pstats"
    python, _, module, *args = argv
    start = time.perf_counter()
    done = subprocess.run([python, "-m", "cProfile", "-o", str(stats_file), "-m", module, *args],
                          check=False, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    if done.returncode != 0 or not stats_file.exists():
        return None
    stats = pstats.Stats(str(stats_file))
    kinds: dict[str, float] = {}
    rows = []
    for func, (_cc, calls, own, cumulative, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        label_ = _label(func)
        kinds[_kind(label_)] = kinds.get(_kind(label_), 0.0) + own
        rows.append((label_, calls, own, cumulative))
    rows.sort(key=lambda r: -r[2])
    stats_file.unlink()
    return Profile(label, wall, sorted(kinds.items(), key=lambda kv: -kv[1]), rows[:TOP])


@dataclass(frozen=True)
class Imports:
    """``python -X importtime`` of one command: the top-level imports that cost the most."""

    label: str
    total: float
    """Seconds spent importing, all modules."""
    top: list[tuple[str, float]]
    """(module, cumulative seconds), largest first: imports at the top level and one level in (marked ↳)."""


def import_times(label: str, argv: list[str], env: dict[str, str]) -> Imports | None:
    """Run *argv* (``python -m markit ...``) under ``-X importtime``."""
    python, *rest = argv
    done = subprocess.run([python, "-X", "importtime", *rest], check=False, env={**os.environ, **env},
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        return None
    top: list[tuple[str, float]] = []
    total = 0.0
    for line in done.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if not line.startswith("import time:") or len(parts) != 3 or "self [us]" in line:
            continue
        self_us, cumulative_us, name = parts
        total += int(self_us) / 1e6
        level = (len(name) - len(name.lstrip(" ")) - 1) // 2  # one space before a top-level import, 2 per level
        if level <= 1:
            top.append(("↳ " * level + name.strip(), int(cumulative_us) / 1e6))
    top.sort(key=lambda kv: -kv[1])
    return Imports(label, total, top[:TOP])
