"""Tar reading: pax records, member kinds, limits, and the gzip layer."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest

from markit.formats.base import Member
from markit.formats.tar.reader import TarArchive, parse_pax, tar_kind
from markit.model.limits import Limits
from markit.storage.sources import ByteSource
from tests.support.hostile import TEntry, build_tar, sound_files, tgz_of


def archive_of(data: bytes, limits: Limits | None = None) -> TarArchive:
    source = ByteSource(io.BufferedReader(io.BytesIO(data)), size=None)  # type: ignore[arg-type]
    return TarArchive(source, "-", limits or Limits(), gzipped=data[:2] == b"\x1f\x8b")


def read_all(archive: TarArchive) -> tuple[list[Member], dict[str, bytes]]:
    kept: dict[str, bytearray] = {}

    class Sink:
        def __init__(self, name: str) -> None:
            self.name = name
            kept[name] = bytearray()

        def write(self, chunk: bytes) -> None:
            kept[self.name] += chunk

        def done(self, member: Member, complete: bool) -> None:
            if not complete:
                del kept[self.name]

    members = archive.scan(lambda m: Sink(m.name) if m.kind == "file" else None)
    return members, {k: bytes(v) for k, v in kept.items()}


def test_parse_pax() -> None:
    assert parse_pax(b"18 path=a/b/c.txt\n11 size=42\n\x00\x00") == {"path": "a/b/c.txt", "size": "42"}
    for bad in (b"x path=a\n", b"99 path=a\n", b"9 patha\n\n"):
        with pytest.raises(ValueError, match="pax record"):
            parse_pax(bad)


@pytest.mark.parametrize(
    ("kind", "pax", "found"),
    [(tarfile.REGTYPE, {}, "file"), (tarfile.AREGTYPE, {}, "file"), (tarfile.DIRTYPE, {}, "dir"),
     (tarfile.SYMTYPE, {}, "symlink"), (tarfile.LNKTYPE, {}, "hardlink"), (tarfile.FIFOTYPE, {}, "special"),
     (tarfile.CHRTYPE, {}, "special"), (tarfile.GNUTYPE_SPARSE, {}, "special"), (b"V", {}, "special"),
     (tarfile.REGTYPE, {"GNU.sparse.major": "1"}, "special")],
)
def test_tar_kinds(kind: bytes, pax: dict[str, str], found: str) -> None:
    assert tar_kind(kind, pax)[0] == found


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_long_names_in_every_format(fmt: int) -> None:
    name = "m/" + "d" * 120 + "/" + "f" * 90
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as t:
        info = tarfile.TarInfo(name)
        info.size = 3
        t.addfile(info, io.BytesIO(b"abc"))
    archive = archive_of(out.getvalue())
    members, data = read_all(archive)
    assert [m.name for m in members] == [name] and data == {name: b"abc"} and archive.root == "m"


def test_a_tgz_reads_back_under_its_root() -> None:
    archive = archive_of(tgz_of(sound_files()))
    _, data = read_all(archive)
    assert archive.root == "m" and archive.complete and archive.problems == []
    assert {k.removeprefix("m/"): v for k, v in data.items()} == sound_files()


def test_pax_size_and_path_override_the_header() -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as t:
        info = tarfile.TarInfo("short")
        info.size = 2
        info.pax_headers = {"path": "m/ünïcode name"}
        t.addfile(info, io.BytesIO(b"hi"))
    _, data = read_all(archive_of(out.getvalue()))
    assert data == {"m/ünïcode name": b"hi"}


def test_a_huge_pax_header_is_refused_not_read() -> None:
    info = tarfile.TarInfo("x")
    info.type = tarfile.XHDTYPE
    info.size = 1 << 40
    archive = archive_of(info.tobuf(tarfile.GNU_FORMAT) + bytes(2048))
    read_all(archive)
    assert [p.code for p in archive.problems] == ["bomb"] and not archive.complete


def test_a_huge_declared_member_stops_at_max_size() -> None:
    archive = archive_of(build_tar([TEntry("m/big", b"", size=1 << 33)], end=False), Limits(max_size=1 << 32))
    read_all(archive)
    assert [p.code for p in archive.problems] == ["bomb"]


def test_a_gzip_bomb_stops_on_ratio() -> None:
    archive = archive_of(build_tar([TEntry("m/zeros", bytes(32 << 20))]), Limits(max_ratio=100))
    read_all(archive)
    assert [p.code for p in archive.problems] == ["bomb"] and "100 times" in archive.problems[0].message


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (build_tar([TEntry("m/a", b"x" * 5000)], gz=False)[:1500], "ends inside"),
        (build_tar([TEntry("m/a", b"x")], gz=False, end=False), "end-of-archive marker"),
        (build_tar([TEntry("m/a", b"x" * 5000)])[:-10], "gzip stream ends early"),
        (gzip.compress(b"not a tar at all" * 100), "does not hold a tar"),
    ],
)
def test_truncated_and_foreign(data: bytes, words: str) -> None:
    archive = archive_of(data)
    read_all(archive)
    assert not archive.complete and words in archive.problems[-1].message


def test_a_damaged_gzip_crc_is_caught() -> None:
    data = bytearray(build_tar([TEntry("m/a", b"hello" * 100)]))
    data[-8] ^= 0xFF  # the gzip trailer's CRC-32
    archive = archive_of(bytes(data))
    read_all(archive)
    assert archive.problems[-1].code == "corrupt" and "gzip" in archive.problems[-1].message


def test_a_second_gzip_member_is_not_read() -> None:
    first = build_tar([TEntry("m/a", b"1")], end=False)
    second = gzip.compress(build_tar([TEntry("m/b", b"2")], gz=False))
    archive = archive_of(first + second)
    members, _ = read_all(archive)
    assert [m.name for m in members] == ["m/a"] and "end-of-archive" in archive.problems[-1].message


def test_links_and_devices_never_get_a_sink() -> None:
    entries = [TEntry("m/l", type=tarfile.SYMTYPE, linkname="/etc/passwd"), TEntry("m/h", type=tarfile.LNKTYPE,
               linkname="m/l"), TEntry("m/c", type=tarfile.CHRTYPE), TEntry("m/f", b"ok")]
    asked: list[str] = []
    archive = archive_of(build_tar(entries))
    members = archive.scan(lambda m: asked.append(m.name))  # type: ignore[func-returns-value]
    assert [m.kind for m in members] == ["symlink", "hardlink", "special", "file"] and asked == ["m/f"]
    assert members[0].detail == "/etc/passwd"
