"""Sinks: the pipe buffer grows for streams; regular files are left as they are."""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path

import pytest

from markit.storage.sinks import PIPE_BUFFER, StreamSink

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="F_SETPIPE_SZ is Linux's")


def _max_pipe() -> int:
    with open("/proc/sys/fs/pipe-max-size", "rb") as f:
        return int(f.read())


def test_stream_sink_grows_a_pipe_and_writes_through_it() -> None:
    read_end, write_end = os.pipe()
    try:
        assert fcntl.fcntl(write_end, fcntl.F_GETPIPE_SZ) < PIPE_BUFFER  # the kernel default, 64 KiB
        sink = StreamSink(write_end, "pipe")
        assert fcntl.fcntl(write_end, fcntl.F_GETPIPE_SZ) == min(PIPE_BUFFER, _max_pipe())
        data = os.urandom(200_000)  # more than the default buffer: would block without the growth
        sink.write(data[:1000], memoryview(data)[1000:])
        assert sink.position == len(data)
        os.close(write_end)
        write_end = -1
        got = b""
        while chunk := os.read(read_end, 1 << 16):
            got += chunk
        assert got == data
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)


def test_stream_sink_leaves_a_larger_pipe_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("markit.storage.sinks.PIPE_BUFFER", 1 << 17)  # below the pipe's size, without privileges
    read_end, write_end = os.pipe()
    try:
        fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 1 << 18)
        StreamSink(write_end, "pipe")
        assert fcntl.fcntl(write_end, fcntl.F_GETPIPE_SZ) == 1 << 18
    finally:
        os.close(read_end)
        os.close(write_end)


def test_stream_sink_on_a_regular_file_just_writes(tmp_path: Path) -> None:
    path = tmp_path / "out"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        sink = StreamSink(fd, str(path))
        sink.write(b"abc", b"def")
    finally:
        os.close(fd)
    assert path.read_bytes() == b"abcdef"


def test_file_sink_truncate_writes_from_there(tmp_path: Path) -> None:
    from markit.storage.sinks import FileSink

    sink = FileSink(str(tmp_path / "a.mar"), force=False)
    sink.write(b"header", b"data that goes")
    sink.truncate(6)
    sink.write(b"DATA")
    assert sink.position == 10
    sink.commit()
    assert (tmp_path / "a.mar").read_bytes() == b"headerDATA"


def test_replace_file_swaps_then_removes_the_old_one(tmp_path: Path) -> None:
    from markit.storage import sinks

    old, new = tmp_path / "m.mar", tmp_path / ".m.mar.markit-x.tmp"
    old.write_bytes(b"old archive")
    new.write_bytes(b"new archive")
    assert sinks._exchange(str(new), str(old)) is True  # this machine's filesystem supports RENAME_EXCHANGE
    assert (old.read_bytes(), new.read_bytes()) == (b"new archive", b"old archive")
    sinks.replace_file(str(new), str(old))  # swaps back the other way, then unlinks the temporary name
    assert old.read_bytes() == b"old archive" and not new.exists()
    fresh = tmp_path / "fresh.tmp"
    fresh.write_bytes(b"x")
    sinks.replace_file(str(fresh), str(tmp_path / "none.mar"))  # nothing to swap with: a plain rename
    assert (tmp_path / "none.mar").read_bytes() == b"x" and not fresh.exists()


def test_replace_file_falls_back_where_exchange_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from markit.storage import sinks

    monkeypatch.setattr(sinks, "_exchange", lambda first, second: False)
    (tmp_path / "m.mar").write_bytes(b"old")
    (tmp_path / "t.tmp").write_bytes(b"new")
    sinks.replace_file(str(tmp_path / "t.tmp"), str(tmp_path / "m.mar"))
    assert (tmp_path / "m.mar").read_bytes() == b"new" and not (tmp_path / "t.tmp").exists()
