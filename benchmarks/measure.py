"""Running one command and measuring it: wall time, CPU time, peak RSS, peak extra disk, output size.

* wall: ``time.perf_counter`` from just before the spawn to the reaping of the last process.
* peak RSS: ``/usr/bin/time -f %M`` around the command: the largest of the process and the
  children it waited for. Not ``wait4`` on our own child: Linux starts a child's peak RSS at its
  parent's (the peak of the forked image is kept across ``exec``), and this harness's Python is
  far bigger than the tiny ``time`` program. Without ``/usr/bin/time``, ``wait4`` is used and
  the figure is only an upper bound. In a pipeline (``markit create -o - | cat``) the RSS is the
  first command's, markit's own.
* CPU: ``os.wait4``'s rusage (user + system) of the processes, their waited-for children included.
* others' load: the machine's busy CPU time during the run (``/proc/stat``) minus the job's own,
  over the wall: how many cores other users took meanwhile. The machine is shared; a sample taken
  while someone else ran a build is flagged rather than silently kept.
* disk: a thread sums the allocated blocks (``st_blocks``) of every file under the folders a job
  writes to (its output folder, ``TMPDIR``, the folder of a kept output) every 50 ms; the peak
  minus the total before the job is the job's extra disk, output included. Counting our own
  folders, not the file system's free space, keeps other users' writes out; for that the peers'
  temporary folders (``TMPDIR``) point there too. The inputs are not walked (they do not change),
  and when a walk gets slow (an unpack of 100,000 files) the thread waits 20 times as long as the
  walk took before the next one, so it never takes more than ~5% of a core from the job.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Command", "Sample", "apparent_size", "busy_seconds", "prefault", "remove", "run", "wait_for_quiet"]

DISK_INTERVAL = 0.05  # s: the issue's ~50 ms; a walk of a few dozen files costs well under 1 ms
DISK_DUTY = 20  # the disk thread sleeps at least this many times as long as its last walk took
TIME = "/usr/bin/time"
QUIET_CORES = 0.3  # cores busy below which the machine counts as quiet before a job starts
ERROR_TAIL = 600  # characters of a failed command's stderr kept for the report


@dataclass(frozen=True)
class Command:
    """What to run for one job."""

    argv: list[str]
    """The command."""
    stdout: Path | None = None
    """Where its standard output goes (the last command's, in a pipeline); None: /dev/null."""
    pipe_to: list[str] | None = None
    """A second command reading the first's standard output."""
    env: dict[str, str] = field(default_factory=dict)
    """Variables added to the environment."""
    cwd: Path | None = None
    """Working folder."""
    output: Path | None = None
    """The file or folder the job makes: its size is reported, and it is removed afterwards (unless *keep*)."""
    keep: bool = False
    """Leave *output* in place after the job: the next run of the job overwrites it (``create -f``)."""


@dataclass(frozen=True)
class Sample:
    """One run of one job."""

    wall: float
    """Seconds, spawn to exit."""
    cpu: float
    """User + system seconds of the processes."""
    rss: int
    """Peak resident set, bytes (the first command's in a pipeline)."""
    disk: int
    """Peak growth of the work folder during the run, bytes."""
    output_bytes: int
    """Apparent size of the output when the job ended, bytes."""
    others: float = 0.0
    """Cores other processes kept busy, on average, during the run."""
    error: str = ""
    """Exit status and the tail of stderr if the job failed."""

    @property
    def ok(self) -> bool:
        return not self.error


def busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (every core; idle and iowait excluded)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def wait_for_quiet(limit: float, *, threshold: float = QUIET_CORES, step: float = 1.0) -> float:
    """Wait up to *limit* seconds for a second in which under *threshold* cores are busy; the seconds waited."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        before = busy_seconds()
        time.sleep(step)
        if (busy_seconds() - before) / step < threshold:
            break
    return time.monotonic() - start


def prefault(size: int) -> None:
    """Touch *size* bytes of fresh memory and free them, so the next job's page-cache writes land on warm pages.

    This VM hands freed memory back to its host (virtio-balloon free page reporting, order-9 blocks,
    about 2 s after they are freed), and the first write to such a page costs a host page fault:
    ``cp`` of a page-cached 2 GiB file took 2.1-5.6 s that way and 1.0-1.2 s right after this call.
    Called before every job that writes (limits, peers and markit alike), it measures the machine's
    page cache rather than its host's allocator. At most half the available memory is touched.
    """
    available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    warm = b"\x01" * min(size, available // 2)
    del warm


def tree_blocks(root: Path) -> int:
    """Bytes allocated to the files under *root* (deleted-while-walked files count as 0)."""
    total = 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_blocks * 512
            except FileNotFoundError:
                pass
    return total


def apparent_size(path: Path | None) -> int:
    """The bytes in the file *path*, or in every file under the folder *path*; 0 if absent."""
    if path is None or not path.exists():
        return 0
    if path.is_file():
        return path.stat().st_size
    return sum((Path(d) / n).stat().st_size for d, _, names in os.walk(path) for n in names)


def remove(path: Path | None) -> None:
    if path is None or not path.exists():
        return
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


class DiskWatch:
    """The peak growth of the allocated bytes under *roots* while the ``with`` block runs."""

    def __init__(self, roots: Path | Sequence[Path]) -> None:
        self.roots = [roots] if isinstance(roots, Path) else list(roots)
        self.baseline = self._blocks()
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _blocks(self) -> int:
        return sum(tree_blocks(root) for root in self.roots)

    def _loop(self) -> None:
        pause = DISK_INTERVAL
        while not self._stop.wait(pause):
            started = time.perf_counter()
            self.peak = max(self.peak, self._blocks())
            pause = max(DISK_INTERVAL, DISK_DUTY * (time.perf_counter() - started))

    def __enter__(self) -> None:
        self._thread.start()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._blocks())

    @property
    def extra(self) -> int:
        return max(0, self.peak - self.baseline)


def _reap(process: subprocess.Popen[bytes]) -> tuple[int, resource.struct_rusage]:
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage


def _self_cpu() -> float:
    """CPU seconds of this harness process (its disk-watch thread included), not of its children."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _time_rss(report: str) -> int:
    """Bytes from ``/usr/bin/time -f %M``'s report (KiB on its last line); 0 if there is none."""
    lines = report.strip().splitlines()
    return int(lines[-1]) * 1024 if lines and lines[-1].isdigit() else 0


def run(command: Command, watch: Path | Sequence[Path]) -> Sample:
    """Run *command* once, watching the disk use under the folder(s) *watch*."""
    env = {**os.environ, **command.env}
    disk = DiskWatch(watch)
    with contextlib.ExitStack() as stack:
        err = stack.enter_context(tempfile.TemporaryFile())
        out = stack.enter_context(open(command.stdout, "wb")) if command.stdout else subprocess.DEVNULL
        peak = stack.enter_context(tempfile.NamedTemporaryFile("r", suffix=".rss"))
        timed = [TIME, "-f", "%M", "-o", peak.name, *command.argv] if os.path.exists(TIME) else command.argv
        stack.enter_context(disk)
        busy, own = busy_seconds(), _self_cpu()
        start = time.perf_counter()
        first = subprocess.Popen(timed, stdout=subprocess.PIPE if command.pipe_to else out,
                                 stderr=err, env=env, cwd=command.cwd)
        second = None
        if command.pipe_to:
            second = subprocess.Popen(command.pipe_to, stdin=first.stdout, stdout=out, stderr=err,
                                      env=env, cwd=command.cwd)
            assert first.stdout is not None
            first.stdout.close()
        code, usage = _reap(first)
        cpu, rss = usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024
        if second is not None:
            code2, usage2 = _reap(second)
            code = code or code2
            cpu += usage2.ru_utime + usage2.ru_stime
        wall = time.perf_counter() - start
        others = max(0.0, busy_seconds() - busy - cpu - (_self_cpu() - own)) / wall
        rss = _time_rss(peak.read()) or rss
        err.seek(0)
        tail = err.read().decode("utf-8", "replace")[-ERROR_TAIL:]
    error = f"exit {code}: {tail.strip()}" if code else ""
    return Sample(wall, cpu, rss, disk.extra, apparent_size(command.output), others, error)
