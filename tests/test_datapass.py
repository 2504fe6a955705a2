"""A small file read whole: one read into a reused buffer, its digest, and a file that changed is refused."""

from __future__ import annotations

import hashlib
import os
import re
import zlib
from pathlib import Path

import pytest

from markit.engine.datapass import WHOLE_MAX, Digest, digest_of, read_whole
from markit.errors import InputError


@pytest.mark.parametrize("size", [0, 1, 4096, WHOLE_MAX])
def test_read_whole_reads_into_the_buffer_and_digests(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    (tmp_path / "f").write_bytes(data)
    buffer = bytearray(WHOLE_MAX + 1)
    got, digest = read_whole(str(tmp_path / "f"), size, memoryview(buffer))
    assert bytes(got) == data and bytes(buffer[:size]) == data  # in the caller's buffer, not a copy
    assert digest == Digest(hashlib.sha256(data).hexdigest(), zlib.crc32(data), size) == digest_of(data)


def test_one_read_per_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """It asks for one byte more than scanned: a file at its end reads short, so one call reads it and shows it
    did not grow."""
    (tmp_path / "f").write_bytes(b"x" * 5000)
    calls: list[int] = []
    real = os.readv

    def counted(fd: int, buffers: list[memoryview]) -> int:
        calls.append(sum(len(b) for b in buffers))
        return real(fd, buffers)

    monkeypatch.setattr(os, "readv", counted)
    read_whole(str(tmp_path / "f"), 5000, memoryview(bytearray(WHOLE_MAX + 1)))
    assert calls == [5001]


@pytest.mark.parametrize(("scanned", "actual", "read"), [(10, 11, "11+"), (10, 4, "4+"), (10, 0, "0+")])
def test_a_file_that_changed_is_refused(tmp_path: Path, scanned: int, actual: int, read: str) -> None:
    (tmp_path / "f").write_bytes(b"y" * actual)
    message = f"/f: changed while it was archived (scanned {scanned} bytes, read {read})"
    with pytest.raises(InputError, match=re.escape(message) + "$"):
        read_whole(str(tmp_path / "f"), scanned, memoryview(bytearray(WHOLE_MAX + 1)))


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"/gone: cannot open \(No such file or directory\)$"):
        read_whole(str(tmp_path / "gone"), 1, memoryview(bytearray(WHOLE_MAX + 1)))
