"""Running ``python -m markit`` in a real process: its exit status, stderr and peak memory, with a time limit.

Peak memory is what the kernel counted for that process alone, read by ``/usr/bin/time -f %M``
(``wait4``). Measuring with ``wait4`` from pytest itself would count the pytest process the child
was forked from: Linux keeps ``ru_maxrss`` across ``exec``, so every child would look as large as
pytest (145 MiB seen). ``/usr/bin/time`` is a small process, and it forks the one it measures.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path

__all__ = ["ADDRESS_SPACE", "run_measured"]

ADDRESS_SPACE = 512 << 20  # bytes a child may map: a regression fails with MemoryError, not by taking the machine's


def run_measured(args: list[str], cwd: Path, stdin: Iterable[bytes] = (), *, timeout: float = 20.0
                 ) -> tuple[int, int, str]:
    """(exit status, peak RSS in bytes, stderr) of ``python -m markit ARGS``; killed after *timeout* seconds.

    *stdin* is written to a pipe from a thread, so a large input never sits in this process or on disk.
    A process killed for taking too long has a negative status.
    """
    with tempfile.NamedTemporaryFile(prefix="markit-peak-", suffix=".txt") as report:
        script = f'ulimit -v {ADDRESS_SPACE >> 10}; exec /usr/bin/time -q -f %M -o "$0" "$@"'
        child = subprocess.Popen(["bash", "-c", script, report.name, sys.executable, "-m", "markit", *args],
                                 cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, start_new_session=True)
        said = _talk(child, stdin, timeout)
        kilobytes = Path(report.name).read_text().strip().splitlines()
    peak = int(kilobytes[-1]) * 1024 if kilobytes and kilobytes[-1].isdigit() else 0
    return child.returncode, peak, said


def _talk(child: subprocess.Popen[bytes], stdin: Iterable[bytes], timeout: float) -> str:
    pipe, errors = child.stdin, child.stderr
    assert pipe is not None and errors is not None

    def feed() -> None:
        try:
            for chunk in stdin:
                pipe.write(chunk)
            pipe.close()
        except (BrokenPipeError, ValueError):  # the reader stopped early, as it should
            pass

    said: list[bytes] = []
    threads = [threading.Thread(target=feed), threading.Thread(target=lambda: said.append(errors.read()))]
    for t in threads:
        t.start()
    try:
        child.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)  # the whole group: bash's exec'd time and markit under it
        child.wait()
        child.returncode = -signal.SIGKILL
    for t in threads:
        t.join()
    for end in (pipe, errors):
        try:
            end.close()
        except BrokenPipeError:
            pass
    return b"".join(said).decode(errors="replace")
