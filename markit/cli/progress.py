"""A one-line progress bar on stderr: bytes done, rate, time left, fitted to the terminal's width.

Shown only when stderr is a terminal and ``-q`` was not given; redrawn at most
ten times a second, so it costs nothing measurable on a fast copy.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Sequence
from typing import TextIO

__all__ = ["Progress", "fit_line", "human_bytes", "terminal_columns"]

REDRAW_EVERY = 0.1  # seconds: ten redraws a second looks live and costs ~0 CPU
RATE_AFTER = 1.0  # seconds of data before a rate and an ETA are shown: the first chunk alone says nothing
BAR = 24  # characters of bar when the line has room for it
BAR_MIN = 10  # a narrower bar says too little: it is dropped instead
LABEL_MIN = 10  # characters of label kept before the bar or the rate gives way


def human_bytes(n: float) -> str:
    """``1.5 GiB``-style sizes."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def terminal_columns(stream: TextIO) -> int:
    """The width of the terminal *stream* writes to: ``COLUMNS`` if set (as :mod:`shutil` reads it), else the
    terminal's own, else :func:`shutil.get_terminal_size`'s answer (80 when nothing knows)."""
    env = os.environ.get("COLUMNS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):  # not a file (StringIO), closed, or not a terminal
        return shutil.get_terminal_size().columns


def _shorten(text: str, room: int, ellipsis: str) -> str:
    if len(text) <= room:
        return text
    if room <= len(ellipsis):
        return text[: max(room, 0)]
    return text[: room - len(ellipsis)] + ellipsis


def _ellipsis(stream: TextIO) -> str:
    """``…``, or ``...`` where the stream cannot encode it (an ASCII locale would show ``\\u2026``)."""
    encoding = getattr(stream, "encoding", None)
    try:
        "…".encode(encoding or "utf-8")  # no encoding: a stream of str (StringIO)
    except (UnicodeEncodeError, LookupError):
        return "..."
    return "…"


def fit_line(label: str, fraction: float, tails: Sequence[str], columns: int, ellipsis: str = "…") -> str:
    """``label [####    ] tail`` in at most ``columns - 1`` characters (writing the last column makes some
    terminals wrap). *tails* go from the fullest to the shortest: the first that leaves :data:`LABEL_MIN`
    characters of label is used; the bar takes what is left, down to :data:`BAR_MIN` (else it is dropped);
    the label, shortened with an ellipsis, the rest."""
    room = max(columns - 1, 1)
    keep = min(len(label), LABEL_MIN)
    tail = next((t for t in tails if len(t) + keep <= room), tails[-1])
    spare = room - len(tail) - keep - 3  # " [" and "]"
    width = min(BAR, spare) if spare >= BAR_MIN else 0
    bar = f" [{'#' * int(fraction * width):<{width}}]" if width else ""
    return (_shorten(label, room - len(tail) - len(bar), ellipsis) + bar + tail)[:room]


class Progress:
    """Counts bytes toward *total* and draws a bar when *enabled*."""

    def __init__(self, total: int, label: str, *, enabled: bool, stream: TextIO | None = None) -> None:
        self.total = max(total, 1)
        self.label = label
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.done = 0
        self.first: tuple[float, int] | None = None
        """When the first bytes were counted, and how many: the rate is measured from there."""
        self.drawn = 0.0

    @classmethod
    def for_terminal(cls, total: int, label: str, *, quiet: bool) -> Progress:
        """A bar that draws only if stderr is a terminal and not *quiet*."""
        return cls(total, label, enabled=not quiet and sys.stderr.isatty())

    def update(self, done: int, total: int) -> None:
        """*done* of *total* bytes are done (the shape of the API's *progress*); a *total* of 0 is unknown."""
        self.total = max(total, 1) if total > 0 else 0
        self.advance(done - self.done)

    def advance(self, n: int) -> None:
        """*n* more bytes are done."""
        self.done += n
        if self.enabled:
            now = time.monotonic()
            if self.first is None:
                self.first = (now, self.done)
            if now - self.drawn >= REDRAW_EVERY:
                self.drawn = now
                self._draw(now)

    def _tails(self, now: float) -> list[str]:
        """What follows the bar: percent and bytes, then rate and ETA once there is a second of data."""
        if self.total:
            tail = f" {self._fraction():4.0%} {human_bytes(self.done)}/{human_bytes(self.total)}"
        else:
            tail = f" {human_bytes(self.done)}"  # a stream: how much there is is not known
        since, at_start = self.first or (now, self.done)
        if now - since < RATE_AFTER:
            return [tail]
        rate = (self.done - at_start) / (now - since)
        if not self.total:
            return [f"{tail} {human_bytes(rate)}/s", tail]
        left = (self.total - self.done) / rate if rate > 0 else 0.0
        return [f"{tail} {human_bytes(rate)}/s ETA {left:.0f}s", tail]

    def _fraction(self) -> float:
        return min(self.done / self.total, 1.0) if self.total else 0.0

    def _draw(self, now: float) -> None:
        line = fit_line(self.label, self._fraction(), self._tails(now),
                        terminal_columns(self.stream), _ellipsis(self.stream))
        self.stream.write(f"\r{line}\033[K")  # and clear what a longer line left after it
        self.stream.flush()

    def close(self) -> None:
        """Clear the bar's line."""
        if self.enabled:
            self.stream.write("\r\033[K")
            self.stream.flush()
