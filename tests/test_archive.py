"""Opening archives: the format from the bytes, the tar root, the byte source."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from markit.formats.base import ArchiveProblem, Member, find_root, relative_members
from markit.formats.detect import detect_format, open_archive
from markit.storage.sources import ByteSource, Truncated
from tests.support.hostile import TEntry, build_tar, sound_files, tgz_of, zip_of


@pytest.mark.parametrize(
    ("head", "found"),
    [
        (b"PK\x03\x04rest", "zip"),
        (b"PK\x05\x06" + bytes(18), "zip"),
        (b"\x1f\x8b\x08\x00", "tar.gz"),
        (bytes(257) + b"ustar\x0000", "tar"),
        (bytes(257) + b"ustar  \x00", "tar"),
        (b"", None),
        (b"hello", None),
        (b"PK\x01\x02", None),
        (b"BZh91AY&SY", None),
    ],
)
def test_detect_format(head: bytes, found: str | None) -> None:
    assert detect_format(head) == found


def files(*names: str) -> list[Member]:
    return [Member(n, "dir" if n.endswith("/") else "file", 0) for n in names]


@pytest.mark.parametrize(
    ("names", "root"),
    [
        (["m/a", "m/b/c", "m/"], "m"),
        (["./", "./a", "./b/c"], "."),
        (["m/a", "n/b"], None),
        (["m/a", "top.txt"], None),
        (["a"], None),
        (["/abs/a", "/abs/b"], None),
        (["../x/a"], None),
        (["m", "m/a"], None),
        ([], None),
    ],
)
def test_find_root(names: list[str], root: str | None) -> None:
    assert find_root(files(*names)) == root


def test_relative_members_drop_the_root_folder() -> None:
    members = files("m/", "m/a", "m/b/", "m/b/c")
    assert [m.name for m in relative_members(members, "m")] == ["a", "b/", "b/c"]
    assert relative_members(members, None) == members


def test_byte_source_pushback_peek_and_skip() -> None:
    source = ByteSource(io.BufferedReader(io.BytesIO(b"0123456789")), size=None)  # type: ignore[arg-type]
    assert source.peek(3) == b"012" and source.position == 0
    assert source.read(4) == b"0123"
    source.unread(b"23")
    assert source.read_exact(5, "x") == b"23456" and source.position == 7
    source.skip(2, "x")
    assert source.read(10) == b"9"
    with pytest.raises(Truncated, match="inside the thing"):
        source.read_exact(1, "the thing")


def test_byte_source_skip_seeks_on_files(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abcdef")
    with open(path, "rb") as f:
        source = ByteSource(f, size=6)
        source.skip(4, "x")
        assert source.read(5) == b"ef"
        with pytest.raises(Truncated):
            source.skip(1, "x")


@pytest.mark.parametrize(
    ("name", "data", "fmt", "reader"),
    [
        ("a.tar.gz", zip_of(sound_files()), "zip", "ZipFileArchive"),
        ("a.mar", tgz_of(sound_files()), "tar.gz", "TarArchive"),
        ("a.bin", build_tar([TEntry("m/a", b"x")], gz=False), "tar", "TarArchive"),
    ],
)
def test_open_archive_goes_by_the_bytes_not_the_name(tmp_path: Path, name: str, data: bytes, fmt: str,
                                                     reader: str) -> None:
    (tmp_path / name).write_bytes(data)
    with open_archive(str(tmp_path / name)) as archive:
        assert archive.format == fmt and type(archive).__name__ == reader


def test_a_folder_and_a_non_archive(tmp_path: Path) -> None:
    with open_archive(str(tmp_path)) as archive:
        assert archive.format == "directory"
    (tmp_path / "x").write_bytes(b"\x00" * 600)
    with pytest.raises(ArchiveProblem) as caught:
        open_archive(str(tmp_path / "x"))
    assert caught.value.problems[0].code == "not-an-archive"


def test_a_tar_of_one_folder(tmp_path: Path) -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as t:
        info = tarfile.TarInfo("m")
        info.type = tarfile.DIRTYPE
        t.addfile(info)
    (tmp_path / "e.tar").write_bytes(out.getvalue())
    with open_archive(str(tmp_path / "e.tar")) as archive:
        assert [m.name for m in archive.scan(lambda m: None)] == ["m/"] and archive.complete
        assert archive.root == "m"
