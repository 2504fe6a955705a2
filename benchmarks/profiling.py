"""Where a markit command's time goes: cProfile of every thread, sorted into kinds of work; import times.

``python -m cProfile`` sees the main thread only, and markit hands work (SHA-256, deflate) to
worker threads. So the command runs under a small runner that gives every thread its own
profiler (by wrapping ``threading.Thread.run``) and dumps them all at exit, after the workers
are joined. A thread's time waiting on locks and queues is its idle time.
"""

from __future__ import annotations

import os
import pstats
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Imports", "Profile", "ThreadProfile", "import_times", "profile_command"]

TOP = 8  # functions (and imports) listed per thread
MIN_THREAD_SHARE = 0.05  # threads busy less than this share of the wall are left out of the report

# (kind, substrings of a pstats function label); the first match wins
KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("SHA-256", ("_hashlib.HASH", "openssl_sha256", "hashlib")),
    ("CRC-32", ("crc32",)),
    ("deflate", ("compress", "Compress", "flush' of", "zlib")),
    ("read", ("readv", "readinto", "posix.read", "preadv", "'read' of")),
    ("write", ("writev", "posix.write", "pwrite", "'write' of", "sendfile", "copy_file_range", "splice")),
    ("waiting", ("acquire", "'wait'", "'join'", "_thread.lock", "queue", "Queue")),
    ("start-up, imports", ("<frozen importlib", "marshal.loads", "_imp.", "<module>", "builtins.exec")),
)

RUNNER = """
import atexit, cProfile, re, runpy, sys, threading
out, module, *args = sys.argv[1:]
profiles = [("main", cProfile.Profile())]
def _profiled(run):
    def wrapper(self):
        profile = cProfile.Profile()
        profiles.append((self.name, profile))
        profile.enable()
        try:
            run(self)
        finally:
            profile.disable()
    return wrapper
threading.Thread.run = _profiled(threading.Thread.run)
def _dump():  # atexit runs after the interpreter joined the threads
    profiles[0][1].disable()
    for number, (name, profile) in enumerate(profiles):
        profile.dump_stats(f"{out}/{number:02d}-{re.sub('[^A-Za-z0-9_.-]', '_', name)}.pstats")
atexit.register(_dump)
sys.argv = [module, *args]
profiles[0][1].enable()
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


@dataclass(frozen=True)
class ThreadProfile:
    """One thread's profile, summarised."""

    name: str
    busy: float
    """Seconds of its profiled time not spent waiting on locks and queues."""
    kinds: list[tuple[str, float]]
    """Seconds per kind of work, largest first, ``other Python`` included."""
    top: list[tuple[str, int, float, float]]
    """(function, calls, own seconds, cumulative seconds) of its costliest functions."""

    def shares(self, count: int = 5) -> str:
        total = sum(t for _, t in self.kinds) or 1.0
        return ", ".join(f"{kind} {t / total:.0%}" for kind, t in self.kinds[:count])


@dataclass(frozen=True)
class Profile:
    """One command's profile: every thread that did a noticeable share of the work."""

    label: str
    wall: float
    """The profiled run's wall, seconds (profiling adds a little)."""
    threads: list[ThreadProfile]
    """The main thread first, then the busiest workers."""


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


def _thread(name: str, path: Path) -> ThreadProfile:
    stats = pstats.Stats(str(path))
    kinds: dict[str, float] = {}
    rows = []
    for func, (_cc, calls, own, cumulative, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        label = _label(func)
        kinds[_kind(label)] = kinds.get(_kind(label), 0.0) + own
        rows.append((label, calls, own, cumulative))
    rows.sort(key=lambda r: -r[2])
    busy = sum(t for kind, t in kinds.items() if kind != "waiting")
    return ThreadProfile(name, busy, sorted(kinds.items(), key=lambda kv: -kv[1]), rows[:TOP])


def profile_command(label: str, argv: list[str], env: dict[str, str], out: Path) -> Profile | None:
    """Run *argv* (``python -m markit ...``) with every thread profiled; None if it failed."""
    folder = out / "profiles"
    folder.mkdir(parents=True, exist_ok=True)
    python, _, module, *args = argv
    start = time.perf_counter()
    done = subprocess.run([python, "-c", RUNNER, str(folder), module, *args], check=False,
                          env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    files = sorted(folder.glob("*.pstats"))
    if done.returncode != 0 or not files:
        return None
    threads = [_thread(f.stem.split("-", 1)[1], f) for f in files]
    for f in files:
        f.unlink()
    main, workers = threads[0], sorted(threads[1:], key=lambda t: -t.busy)
    return Profile(label, wall, [main, *(t for t in workers if t.busy >= MIN_THREAD_SHARE * wall)])


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
