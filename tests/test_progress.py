"""The progress bar: drawn only when enabled, throttled, fitted to the terminal, cleared at the end."""

from __future__ import annotations

import fcntl
import io
import os
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

import markit.cli.progress
from markit.cli.progress import Progress, fit_line, human_bytes, terminal_columns


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(markit.cli.progress.time, "monotonic", fake)
    monkeypatch.setenv("COLUMNS", "80")
    return fake


def frames(out: io.StringIO) -> list[str]:
    """Each drawn line, without the carriage return and the clear-to-end-of-line."""
    return [f.removesuffix("\033[K") for f in out.getvalue().split("\r") if f and f != "\033[K"]


@pytest.mark.parametrize(("n", "text"), [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (3 << 30, "3.0 GiB")])
def test_human_bytes(n: int, text: str) -> None:
    assert human_bytes(n) == text


def test_no_rate_or_eta_until_a_second_of_data(clock: Clock) -> None:
    out = io.StringIO()
    bar = Progress(8 << 20, "model", enabled=True, stream=out)
    clock.now += 5  # scanning and planning: not data, not part of the rate
    bar.advance(1 << 20)
    assert frames(out) == ["model [###                     ]  12% 1.0 MiB/8.0 MiB"]
    clock.now += 0.05
    bar.advance(1 << 20)  # within 0.1 s of the last draw: not redrawn
    assert len(frames(out)) == 1
    clock.now += 0.5
    bar.advance(1 << 20)
    assert "/s" not in frames(out)[-1] and "ETA" not in frames(out)[-1]
    clock.now += 0.45  # a second after the first bytes: 2 MiB more in 1 s
    bar.advance(0)
    assert frames(out)[-1].endswith(" 3.0 MiB/8.0 MiB 2.0 MiB/s ETA 2s")
    bar.close()
    assert out.getvalue().endswith("\r\033[K")


@pytest.mark.parametrize("columns", [80, 60, 40, 20, 8])
def test_a_long_name_fits_the_width(clock: Clock, monkeypatch: pytest.MonkeyPatch, columns: int) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    out = io.StringIO()
    name = "a-model-name-of-forty-one-characters-long"
    assert len(name) == 41
    bar = Progress(1 << 30, name, enabled=True, stream=out)
    bar.advance(1 << 20)
    clock.now += 2
    bar.advance(1 << 20)
    for line in frames(out):
        assert len(line) <= columns - 1  # never the last column: some terminals wrap there
    last = frames(out)[-1]
    if columns >= 60:
        assert "…" in last and "ETA" in last and ("[" in last) == (columns == 80)  # then the bar goes
    if columns == 40:
        assert "[" not in last and "ETA" not in last and last.endswith("MiB/1.0 GiB")  # rate and bar go first
    assert out.getvalue().count("\033[K") == 2  # each frame clears what a longer one left


def test_fit_line_keeps_what_fits() -> None:
    assert fit_line("m", 0.5, [" 50% 1 B/2 B"], 80) == "m [############            ] 50% 1 B/2 B"
    assert fit_line("abcdefghijklmnop", 0.0, [" tail"], 45, "...") == "abcdefghi... [                        ] tail"
    assert fit_line("abcdefghijklmnop", 1.0, [" tail"], 30, "...") == "abcdefg... [###########] tail"  # a narrower bar
    assert fit_line("abcdefghijklmnop", 0.0, [" tail"], 25, "...") == "abcdefghijklmnop tail"  # no room for a bar
    assert fit_line("model", 0.0, [" a long tail", " short"], 16) == "model short"  # the rate goes first


def test_the_width_comes_from_the_stream_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    leader, follower = os.openpty()
    try:
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 53, 0, 0))
        with open(follower, "w", closefd=False) as stream:
            assert terminal_columns(stream) == 53
    finally:
        os.close(leader)
        os.close(follower)


def test_an_ascii_stream_gets_three_dots(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "50")
    out = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    Progress(100, "x" * 40, enabled=True, stream=out).advance(10)
    out.flush()
    text = out.buffer.getvalue().decode()  # type: ignore[attr-defined]
    assert "..." in text and len(text.split("\r")[1].removesuffix("\033[K")) <= 49


def test_disabled_draws_nothing() -> None:
    out = io.StringIO()
    bar = Progress(10, "m", enabled=False, stream=out)
    bar.advance(10)
    bar.close()
    assert out.getvalue() == ""


def _stderr_on_a_terminal(args: list[str], cwd: Path) -> str:
    """What ``python -m markit ARGS`` writes to stderr when stderr is a 100-column terminal."""
    leader, follower = os.openpty()
    try:
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
        env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
        done = subprocess.run([sys.executable, "-m", "markit", *args], cwd=cwd, stderr=follower,
                              stdout=subprocess.PIPE, env=env, timeout=60, check=False)
        os.close(follower)
        follower = -1
        chunks = []
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the terminal's other end is closed and drained
                break
            if not data:
                break
            chunks.append(data)
        assert done.returncode == 0, b"".join(chunks)
        return b"".join(chunks).decode(errors="replace")
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)


def test_verify_and_unpack_show_the_bar_on_a_terminal(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.bin").write_bytes(os.urandom(3 << 20))
    (tmp_path / "model" / "handler.py").write_text("def handle(d, c):\n    return d\n")
    markit_create = [sys.executable, "-m", "markit", "create", "-q", "--model-name", "m", "--handler",
                     "handler:handle", "--model-path", "model", "-o", "m.mar"]
    subprocess.run(markit_create, cwd=tmp_path, check=True)
    shown = _stderr_on_a_terminal(["verify", "m.mar"], tmp_path)
    assert "\rverify m.mar [" in shown and "/3.0 MiB" in shown, shown  # the total: what the index declares
    shown = _stderr_on_a_terminal(["unpack", "m.mar", "-d", "out"], tmp_path)
    assert "\runpack m.mar [" in shown and "/3.0 MiB" in shown, shown
    assert (tmp_path / "out" / "weights.bin").stat().st_size == 3 << 20
