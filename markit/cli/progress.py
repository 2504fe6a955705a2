"""A one-line progress bar on stderr: bytes done, rate, time left.

Shown only when stderr is a terminal and ``-q`` was not given; redrawn at most
ten times a second, so it costs nothing measurable on a fast copy.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress", "human_bytes"]

REDRAW_EVERY = 0.1  # seconds: ten redraws a second looks live and costs ~0 CPU


def human_bytes(n: float) -> str:
    """``1.5 GiB``-style sizes."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


class Progress:
    """Counts bytes toward *total* and draws a bar when *enabled*."""

    def __init__(self, total: int, label: str, *, enabled: bool, stream: TextIO | None = None) -> None:
        self.total = max(total, 1)
        self.label = label
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.done = 0
        self.start = time.monotonic()
        self.drawn = 0.0

    @classmethod
    def for_terminal(cls, total: int, label: str, *, quiet: bool) -> Progress:
        """A bar that draws only if stderr is a terminal and not *quiet*."""
        return cls(total, label, enabled=not quiet and sys.stderr.isatty())

    def update(self, done: int, total: int) -> None:
        """*done* of *total* bytes are done (the shape of ``markit.create``'s *progress*)."""
        self.total = max(total, 1)
        self.advance(done - self.done)

    def advance(self, n: int) -> None:
        """*n* more bytes are done."""
        self.done += n
        if self.enabled:
            now = time.monotonic()
            if now - self.drawn >= REDRAW_EVERY:
                self.drawn = now
                self._draw(now)

    def _draw(self, now: float) -> None:
        elapsed = max(now - self.start, 1e-6)
        rate = self.done / elapsed
        fraction = min(self.done / self.total, 1.0)
        left = (self.total - self.done) / rate if rate > 0 else 0.0
        bar = "#" * int(fraction * 24)
        self.stream.write(
            f"\r{self.label} [{bar:<24}] {fraction:4.0%} {human_bytes(self.done)}/{human_bytes(self.total)}"
            f" {human_bytes(rate)}/s ETA {left:4.0f}s "
        )
        self.stream.flush()

    def close(self) -> None:
        """Clear the bar's line."""
        if self.enabled:
            self.stream.write("\r\033[K")
            self.stream.flush()
