"""The writers' two ways in: a member given whole (``add_whole``) is written as the same member streamed in one
chunk (``add``), byte for byte, for every format, layout and method; tar headers are ``tarfile``'s."""

from __future__ import annotations

import os
import random
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from markit.engine.datapass import Consumer, DataStream, Digest, Feed, digest_of
from markit.formats.folder.writer import FolderWriter
from markit.formats.tar.writer import TarWriter, tar_header
from markit.formats.zip.writer import ZipWriter
from markit.storage.sinks import FileSink, Sink, StreamSink

_NOISE = random.Random(13)
MEMBERS = [
    ("empty.txt", b""),
    ("two.txt", b"ab"),  # deflate makes it larger
    ("text.json", b'{"token": 1}\n' * 400),
    ("noise.dat", _NOISE.randbytes(5000)),
    ("sub/noise.dat", _NOISE.randbytes(70_000)),  # more than one stored block, written without copying
    ("sub/deep/text.txt", b"abc" * 349_525),  # one chunk, just under 1 MiB
    ("weights.bin", _NOISE.randbytes(1 << 20)),
]


def one_chunk(data: bytes) -> Feed:
    """A feed that passes *data* as one chunk (none when empty), as pump does for a file of up to 1 MiB."""
    def feed(use: Consumer) -> Digest:
        stream = DataStream(size=len(data), consume=use)
        if data:
            stream.write(memoryview(data))
        return stream.finish()

    return feed


Make = Callable[[Sink], "ZipWriter | TarWriter"]
WRITERS: dict[str, Make] = {
    "zip": lambda sink: ZipWriter(sink),
    "zip-smaller": lambda sink: ZipWriter(sink, keep_smaller=True),
    "tgz": lambda sink: TarWriter(sink, "m", 1_700_000_000.0),
}


def _archive(path: Path, make: Make, method: str, whole: bool, streaming: bool) -> bytes:
    fd = -1
    if streaming:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        sink: Sink = StreamSink(fd, str(path))
    else:
        sink = FileSink(str(path), force=False)
    writer = make(sink)
    for i, (name, data) in enumerate(MEMBERS):
        mtime, mode = 1_700_000_000.0 + i * 2.5, 0o755 if i % 2 else 0o644
        if whole:
            writer.add_whole(name, mtime, mode, method, memoryview(bytearray(data)), digest_of(data))
        else:
            assert writer.add(name, len(data), mtime, mode, method, one_chunk(data)) == digest_of(data)
    writer.finish()
    sink.commit()
    if fd >= 0:
        os.close(fd)
    return path.read_bytes()


@pytest.mark.parametrize("streaming", [False, True], ids=["file", "stream"])
@pytest.mark.parametrize("method", ["store", "deflate"])
@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_a_member_given_whole_is_written_as_when_streamed(tmp_path: Path, kind: str, method: str,
                                                          streaming: bool) -> None:
    make = WRITERS[kind]
    streamed = _archive(tmp_path / "streamed", make, method, whole=False, streaming=streaming)
    whole = _archive(tmp_path / "whole", make, method, whole=True, streaming=streaming)
    assert whole == streamed


def test_the_folder_writer_too(tmp_path: Path) -> None:
    trees = []
    for whole in (False, True):
        target = tmp_path / f"out-{whole}"
        writer = FolderWriter(str(target), force=False)
        for name, data in MEMBERS:
            if whole:
                writer.add_whole(name, 1_600_000_000.0, 0o755, "copy", memoryview(data), digest_of(data))
            else:
                writer.add(name, len(data), 1_600_000_000.0, 0o755, "copy", one_chunk(data))
        writer.commit()
        trees.append({p.relative_to(target).as_posix(): (p.read_bytes(), p.stat().st_mode, p.stat().st_mtime)
                      for p in sorted(target.rglob("*")) if p.is_file()})
    assert trees[0] == trees[1] and len(trees[0]) == len(MEMBERS)


def _tarfile_header(name: str, kind: bytes, size: int, mtime: int, mode: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mtime, info.mode = kind, size, mtime, mode
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


@settings(max_examples=500, deadline=None)
@given(name=st.text(alphabet="ab/._-é ü\udcff", min_size=1, max_size=120),
       kind=st.sampled_from([tarfile.REGTYPE, tarfile.DIRTYPE]),
       size=st.one_of(st.integers(0, 1 << 20), st.sampled_from([8**11 - 1, 8**11, 1 << 40])),
       mtime=st.one_of(st.integers(0, 1 << 33), st.sampled_from([-1, 8**11 - 1, 8**11])),
       mode=st.sampled_from([0o644, 0o755, 0o100644, 0o7777]))
def test_tar_headers_are_tarfiles(name: str, kind: bytes, size: int, mtime: int, mode: int) -> None:
    """Built from a template for a plain ustar block; from tarfile otherwise: the same bytes either way."""
    assert tar_header(name, kind, size, mtime, mode) == _tarfile_header(name, kind, size, mtime, mode)
