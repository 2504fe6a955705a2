"""Sinks: the pipe buffer grows for streams; regular files are left as they are; small writes are gathered."""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
        sink.commit()  # small writes are gathered until then
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


def _counting_writev(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """Record each writev's buffer sizes (the calls still write)."""
    calls: list[list[int]] = []
    real = os.writev

    def counted(fd: int, buffers: list[memoryview]) -> int:
        calls.append([len(b) for b in buffers])
        return real(fd, buffers)

    monkeypatch.setattr(os, "writev", counted)
    return calls


def test_small_writes_are_gathered_and_go_out_in_one_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from markit.storage.sinks import FileSink

    calls = _counting_writev(monkeypatch)
    sink = FileSink(str(tmp_path / "a.mar"), force=False)
    pieces = [bytes([i]) * 100 for i in range(200)]
    for piece in pieces:
        sink.write(piece[:30], memoryview(piece)[30:])
    assert sink.position == 20_000 and calls == [] and os.path.getsize(sink.temp) == 0
    sink.commit()
    assert calls == [[20_000]]
    assert (tmp_path / "a.mar").read_bytes() == b"".join(pieces)


def test_a_large_write_goes_out_at_once_after_what_is_gathered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from markit.storage.sinks import DIRECT_FROM, WRITE_BUFFER, FileSink

    calls = _counting_writev(monkeypatch)
    sink = FileSink(str(tmp_path / "a.mar"), force=False)
    big = os.urandom(DIRECT_FROM)
    sink.write(b"header")
    sink.write(memoryview(big))  # not copied: its view goes into the same writev as the gathered header
    assert calls == [[6, DIRECT_FROM]] and sink.position == 6 + DIRECT_FROM
    small = os.urandom(DIRECT_FROM - 1)
    for _ in range(WRITE_BUFFER // len(small) + 1):  # gathered until a MiB would be passed: then written
        sink.write(small)
    assert len(calls) == 2 and sum(calls[1]) == WRITE_BUFFER // len(small) * len(small) + len(small)
    sink.commit()
    assert (tmp_path / "a.mar").read_bytes() == b"header" + big + small * (WRITE_BUFFER // len(small) + 1)


_OPS = st.lists(st.tuples(st.sampled_from(["write", "pwrite", "truncate"]), st.floats(0, 1),
                          st.sampled_from([0, 1, 30, 4096, 70_000, 300_000])), max_size=25)


@settings(max_examples=150, deadline=None)
@given(ops=_OPS)
def test_file_sink_is_a_file_written_in_place(ops: list[tuple[str, float, int]]) -> None:
    """Writes, in-place rewrites (into gathered bytes, written ones or both) and truncations give the bytes a plain
    file would hold, and the position always counts them."""
    import tempfile

    from markit.storage.sinks import FileSink

    with tempfile.TemporaryDirectory() as temp:
        sink = FileSink(os.path.join(temp, "a.mar"), force=False)
        model = bytearray()
        for i, (op, where, size) in enumerate(ops):
            if op == "write":
                data = bytes([i % 251]) * size
                sink.write(data)
                model += data
            elif op == "pwrite" and len(model) >= size:
                at = int(where * (len(model) - size))
                data = bytes([255 - i % 251]) * size
                sink.pwrite(data, at)
                model[at : at + size] = data
            elif op == "truncate":
                at = int(where * len(model))
                sink.truncate(at)
                del model[at:]
            assert sink.position == len(model)
        sink.commit()
        with open(os.path.join(temp, "a.mar"), "rb") as f:
            assert f.read() == bytes(model)


def test_a_failing_last_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Gathered bytes go out at commit: a full disk then is an OutputError, and the temporary file is removed."""
    import errno

    from markit.errors import OutputError
    from markit.storage import sinks

    def full(fd: int, buffers: list[memoryview]) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    sink = sinks.FileSink(str(tmp_path / "a.mar"), force=False)
    sink.write(b"all of it, gathered")
    monkeypatch.setattr(os, "writev", full)
    with pytest.raises(OutputError, match="no space left on the device"):
        sink.commit()
    sink.abort()  # as write_plan does on any error: harmless twice
    assert os.listdir(tmp_path) == []


def test_abort_drops_what_is_gathered(tmp_path: Path) -> None:
    from markit.storage.sinks import FileSink

    sink = FileSink(str(tmp_path / "a.mar"), force=False)
    sink.write(b"never written")
    sink.abort()
    assert os.listdir(tmp_path) == []
