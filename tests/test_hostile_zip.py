"""Zips that show other readers something else than markit checked, and zip numbers that would drive unbounded work.

A second archive after the end record, an end record hidden in the comment, zip64 end records that
point elsewhere or disagree, Info-ZIP Unicode Path fields that rename an entry: each archive is built
here, what other readers make of it is shown with Python's ``zipfile`` and, where it adds proof,
Info-ZIP ``unzip`` and Java's ``ZipInputStream`` (TorchServe's reader); markit must say ``corrupt``
reading it from a file and from stdin.
"""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import SupportsIndex
from unittest import mock

import pytest

from markit.formats.base import Member
from markit.formats.zip.consistency import unicode_problems
from markit.formats.zip.reader import ZipFileArchive
from markit.formats.zip.records import End, ZipStructureError, end_of, parse_central
from markit.formats.zip.stream import TRAILING_COUNTED, ZipStreamArchive
from markit.model.limits import Limits
from markit.storage.sources import ByteSource
from tests.support.hostile import ZEntry, build_zip, run_main, sound_files

FILES = sound_files()
EVIL = b"import os\nos.system('echo pwned')\n"
UNZIP = Path("/usr/bin/unzip")
TIMEOUT = 60  # seconds for one markit or unzip run on a few KB: far above the ~0.1 s they take
needs_unzip = pytest.mark.skipif(not UNZIP.exists(), reason="Info-ZIP unzip is not installed")


# Records, built here byte by byte (stored entries, unix mode 0644).


def local_header(name: bytes, data: bytes, extra: bytes = b"") -> bytes:
    """A stored entry: its local header, then its data."""
    return struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0x21, zlib.crc32(data), len(data), len(data),
                       len(name), len(extra)) + name + extra + data


def central_header(name: bytes, data: bytes, offset: int, extra: bytes = b"", comment: bytes = b"") -> bytes:
    return struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0x0314, 20, 0, 0, 0, 0x21, zlib.crc32(data), len(data),
                       len(data), len(name), len(extra), len(comment), 0, 0, 0o100644 << 16, offset) + name + extra + comment


def end_record(count: int, cd_size: int, cd_offset: int, comment_length: int = 0) -> bytes:
    return struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, cd_size, cd_offset, comment_length)


def zip64_end_record(count: int, cd_size: int, cd_offset: int) -> bytes:
    return struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, count, count, cd_size, cd_offset)


def zip64_locator(points_at: int) -> bytes:
    return struct.pack("<IIQI", 0x07064B50, 0, points_at, 1)


def unicode_field(raw: bytes, text: str, *, tag: int = 0x7075, version: int = 1, crc: int | None = None) -> bytes:
    """An Info-ZIP Unicode Path (or, by *tag*, Comment) extra field for the header name (or comment) *raw*."""
    body = struct.pack("<BI", version, zlib.crc32(raw) if crc is None else crc) + text.encode()
    return struct.pack("<HH", tag, len(body)) + body


def zipped(files: dict[str, bytes], *, zip64_end: bool = False) -> bytes:
    """*files* as Python's zipfile writes them (with zip64 end records if *zip64_end*)."""
    out = io.BytesIO()
    limit = 1 if zip64_end else zipfile.ZIP_FILECOUNT_LIMIT  # past it, zipfile writes zip64 end records
    with mock.patch.object(zipfile, "ZIP_FILECOUNT_LIMIT", limit), zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return out.getvalue()


def split(data: bytes) -> tuple[bytes, bytes, int]:
    """(entries, central directory, entry count) of a zip with no comment and no zip64 records."""
    count, _, cd_offset = struct.unpack_from("<HII", data, len(data) - 12)
    return data[:cd_offset], data[cd_offset:-22], count


def with_entry(name: bytes, data: bytes, *, local_extra: bytes = b"", central_extra: bytes = b"",
               comment: bytes = b"") -> bytes:
    """The sound model plus one stored entry whose headers carry these extra fields (and comment)."""
    entries, cd, count = split(zipped(FILES))
    cd += central_header(name, data, len(entries), central_extra, comment)
    entries += local_header(name, data, local_extra)
    return entries + cd + end_record(count + 1, len(cd), len(entries))


# How each reader sees it.


def markit_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                data: bytes) -> tuple[int, str]:
    """``markit verify PATH`` in this process: (exit code, stderr)."""
    path = tmp_path / "hostile.mar"
    path.write_bytes(data)
    code, _, err = run_main(monkeypatch, capsys, "verify", str(path))
    path.unlink()
    return code, err


def markit_stdin(tmp_path: Path, data: bytes) -> tuple[int, str]:
    """``cat hostile.mar | markit verify -`` in a real process: (exit code, stderr)."""
    done = subprocess.run([sys.executable, "-m", "markit", "verify", "-"], input=data, capture_output=True,
                          cwd=tmp_path, timeout=TIMEOUT, check=False)
    return done.returncode, done.stderr.decode()


def unzip_names(tmp_path: Path, data: bytes) -> list[str]:
    """The names ``unzip -Z1`` lists."""
    return unzip_list(tmp_path, data)[0]


def unzip_list(tmp_path: Path, data: bytes) -> tuple[list[str], str]:
    """The names ``unzip -Z1`` lists, and what it says on stderr."""
    path = tmp_path / "for-unzip.zip"
    path.write_bytes(data)
    done = subprocess.run([str(UNZIP), "-Z1", str(path)], capture_output=True, timeout=TIMEOUT, check=False)
    path.unlink()
    return done.stdout.decode().splitlines(), done.stderr.decode()


def python_names(data: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return z.namelist()


def assert_corrupt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], data: bytes,
                   file_says: str, stdin_says: str | None = None) -> None:
    """markit says ``corrupt`` (and *file_says*, *stdin_says*) from a file and from stdin."""
    code, err = markit_file(tmp_path, monkeypatch, capsys, data)
    assert code == 1 and "error corrupt" in err and file_says in err, err
    code, err = markit_stdin(tmp_path, data)
    assert code == 1 and "error corrupt" in err and (stdin_says or file_says) in err, err


# The rules, on literals: an end record found at byte 1,000 (its central directory: 10 bytes at byte 0).

AT = 1000
END = end_record(1, 10, 0)
ZIP64_AT = AT - 20 - 56  # where the zip64 end record must be: just before the locator


@pytest.mark.parametrize(
    ("record", "locator", "zip64", "says"),
    [
        (END + b"x", None, None, "1 byte after the end record"),
        (END[:-2] + b"\x05\x00ab", None, None, "declares a 5-byte comment"),
        (END[:-2] + b"\x04\x00PK\x05\x06", None, None, "another end record signature at byte 1,022"),
        (end_record(1, 10, 0)[:8] + b"\x02\x00" + END[10:], None, None, "multi-disk"),
        (END, zip64_locator(0), zip64_end_record(1, 10, 0), "points at byte 0, not just before itself"),
        (END, zip64_locator(ZIP64_AT), None, "no zip64 end record at byte 924"),
        (END, zip64_locator(ZIP64_AT), b"PK\x06\x06" + bytes(52), "says it is 12 bytes long"),
        (END, zip64_locator(ZIP64_AT), zip64_end_record(2, 10, 0), "says entries 1, the zip64 end record 2"),
        (END, struct.pack("<IIQI", 0x07064B50, 0, ZIP64_AT, 2), zip64_end_record(1, 10, 0), "says 2 disks"),
    ],
    ids=["trailing byte", "comment cut", "end in comment", "disks", "locator elsewhere", "no zip64 record",
         "zip64 extensible data", "zip64 disagrees", "zip64 disks"],
)
def test_end_records_another_reader_would_read_otherwise(record: bytes, locator: bytes | None, zip64: bytes | None,
                                                         says: str) -> None:
    with pytest.raises(ZipStructureError, match=says):
        end_of(record, AT, locator, zip64)
    assert end_of(END, AT, None, None) == End(1, 0, 10, AT)
    saturated = end_record(0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
    assert end_of(saturated, AT, zip64_locator(ZIP64_AT), zip64_end_record(70_000, 10, 0)) == End(70_000, 0, 10,
                                                                                                   ZIP64_AT)


@pytest.mark.parametrize(
    ("field", "says"),
    [
        (unicode_field(b"a.txt", "b.txt"), "Unicode Path field in the central directory names it 'b.txt', the header"),
        (struct.pack("<HH", 0x7075, 3) + b"\x01ab", "holds 3 bytes, 5 at least"),
        (struct.pack("<HHBI", 0x7075, 7, 1, zlib.crc32(b"a.txt")) + b"\xff\xfe", "is not UTF-8"),
        (unicode_field(b"", "b", tag=0x6375), "gives the comment 'b', the header ''"),
        (unicode_field(b"a.txt", "a.txt"), None),  # agrees
        (unicode_field(b"a.txt", "b.txt", crc=1), None),  # not this name's CRC: unzip ignores it
        (unicode_field(b"a.txt", "b.txt", version=2), None),  # a version unzip does not know
        (unicode_field(b"a.txt", ""), None),  # empty: "the header's name is UTF-8"
        (unicode_field(b"", "b", tag=0x6375, crc=1), None),
    ],
    ids=["renames", "short", "not utf-8", "comment differs", "agrees", "other crc", "version 2", "empty",
         "comment, other crc"],
)
def test_unicode_fields_on_their_own(field: bytes, says: str | None) -> None:
    found = unicode_problems(parse_central(central_header(b"a.txt", b"x", 0, field), 0, 0), "central directory")
    assert [p.code for p in found] == (["corrupt"] if says else [])
    assert all(says in p.message for p in found if says)


# Issue 6: what follows the end record, where the end record is.


def test_two_zips_back_to_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    two = zipped(FILES) + zipped({**FILES, "handler.py": EVIL})
    with zipfile.ZipFile(io.BytesIO(two)) as z:
        assert z.read("handler.py") == EVIL  # Python reads the second
    if shutil.which("java"):
        from tests.support.java import read_with_zipinputstream

        (tmp_path / "two.mar").write_bytes(two)
        assert [e.name for e in read_with_zipinputstream(tmp_path / "two.mar")] == list(FILES)  # TorchServe the first
    assert_corrupt(tmp_path, monkeypatch, capsys, two, "does not end where the end record starts",
                   "bytes after the end record (a local header: another zip starts there)")
    code, _, err = run_main(monkeypatch, capsys, "unpack", "-", "-d", str(tmp_path / "out"), stdin=two)
    assert code == 1 and "nothing was written" in err and not (tmp_path / "out").exists()


def end_record_in_the_comment() -> bytes:
    """A sound zip whose comment holds another: an evil entry, a central directory listing it, an end record."""
    sound = zipped(FILES)
    _, cd, count = split(sound)
    hidden = local_header(b"evil.py", EVIL)
    cd += central_header(b"evil.py", EVIL, len(sound))  # the comment starts where the sound zip ends
    comment = hidden + cd + end_record(count + 1, len(cd), len(sound) + len(hidden)) + b"\n"
    return sound[:-2] + struct.pack("<H", len(comment)) + comment


@needs_unzip
def test_an_end_record_hidden_in_the_comment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    data = end_record_in_the_comment()
    assert python_names(data) == [*FILES, "evil.py"]
    assert unzip_names(tmp_path, data) == [*FILES, "evil.py"]
    assert_corrupt(tmp_path, monkeypatch, capsys, data, "another end record signature at byte")


@pytest.mark.parametrize(
    ("tail", "says"),
    [
        (b"\0" * 100, "100 bytes after the end record"),
        (b"PK\x03\x04" + bytes(60), "64 bytes after the end record"),
    ],
    ids=["zeros", "a local header"],
)
def test_bytes_after_the_end_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str], tail: bytes, says: str) -> None:
    assert_corrupt(tmp_path, monkeypatch, capsys, zipped(FILES) + tail, says)


def test_a_comment_longer_than_what_is_left(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    sound = zipped(FILES)
    data = sound[:-2] + struct.pack("<H", 50) + b"only twenty bytes..."
    assert_corrupt(tmp_path, monkeypatch, capsys, data, "declares a 50-byte comment",
                   "the archive ends inside the end record's comment")


@needs_unzip
def test_a_zip64_locator_pointing_nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    entries, cd, count = split(zipped(FILES))
    data = entries + cd + zip64_locator(0) + end_record(count, len(cd), len(entries))
    with pytest.raises(zipfile.BadZipFile):
        python_names(data)  # Python looks for the zip64 end record before the locator, then shifts every offset
    assert unzip_names(tmp_path, data) == []  # "End-of-centdir-64 signature not where expected"
    assert_corrupt(tmp_path, monkeypatch, capsys, data, "the zip64 locator points at byte 0")
    code, _, err = run_main(monkeypatch, capsys, "unpack", "-", "-d", str(tmp_path / "out"), stdin=data)
    assert code == 1 and "nothing was written" in err and not (tmp_path / "out").exists()


@needs_unzip
def test_a_zip64_locator_pointing_at_an_earlier_zip64_end_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    entries, cd, count = split(zipped(FILES))
    first = len(entries) + len(cd)  # the sound zip64 end record; an evil entry and directory follow it
    evil_at = first + 56
    evil_cd = cd + central_header(b"evil.py", EVIL, evil_at)
    evil_cd_at = evil_at + len(local_header(b"evil.py", EVIL))
    data = (entries + cd + zip64_end_record(count, len(cd), len(entries)) + local_header(b"evil.py", EVIL) + evil_cd
            + zip64_end_record(count + 1, len(evil_cd), evil_cd_at) + zip64_locator(first)
            + end_record(0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF))
    assert python_names(data) == [*FILES, "evil.py"]  # the zip64 end record just before the locator
    assert unzip_names(tmp_path, data) == list(FILES)  # the one the locator points at
    assert_corrupt(tmp_path, monkeypatch, capsys, data, f"the zip64 locator points at byte {first:,}",
                   "a zip64 end record at byte")


@needs_unzip
def test_a_zip64_end_record_that_disagrees_with_the_end_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    sound = zipped(FILES, zip64_end=True)
    assert sound[-98:-94] == b"PK\x06\x06" and unzip_names(tmp_path, sound) == list(FILES)
    assert markit_file(tmp_path, monkeypatch, capsys, sound)[0] == 0 and markit_stdin(tmp_path, sound)[0] == 0
    data = sound[:-14] + struct.pack("<HH", 2, 2) + sound[-10:]  # the end record says 2 entries, zip64 3
    assert python_names(data) == list(FILES)  # the zip64 end record
    assert "76 extra bytes" in unzip_list(tmp_path, data)[1]  # the classic one: the zip64 records are "extra"
    assert_corrupt(tmp_path, monkeypatch, capsys, data, "the end record says entries 2, the zip64 end record 3")


# Issue 7: the Info-ZIP Unicode Path and Unicode Comment extra fields.


@needs_unzip
@pytest.mark.parametrize("where", ["both", "central directory", "local header"])
def test_a_unicode_path_field_that_renames_an_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str], where: str) -> None:
    def entry(field: bytes) -> bytes:
        return with_entry(b"notes.txt", EVIL, local_extra=field if where != "central directory" else b"",
                          central_extra=field if where != "local header" else b"")

    data = entry(unicode_field(b"notes.txt", "handler_evil.py"))
    assert python_names(data) == [*FILES, "notes.txt"]
    if where != "local header":  # unzip names entries from the central directory
        assert unzip_names(tmp_path, data) == [*FILES, "handler_evil.py"]
    says = f"in the {'central directory' if where == 'both' else where} names it 'handler_evil.py', the header 'notes.txt'"
    assert_corrupt(tmp_path, monkeypatch, capsys, data, says)
    # A field that agrees, or that unzip ignores (its CRC is not the name's, or its version is not 1), is fine.
    for ignored in (unicode_field(b"notes.txt", "notes.txt"), unicode_field(b"notes.txt", "handler_evil.py", crc=1),
                    unicode_field(b"notes.txt", "handler_evil.py", version=2)):
        assert unzip_names(tmp_path, entry(ignored)) == [*FILES, "notes.txt"]
        assert markit_file(tmp_path, monkeypatch, capsys, entry(ignored))[0] == 0
        assert markit_stdin(tmp_path, entry(ignored))[0] == 0


def test_a_unicode_comment_field_that_differs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    field = unicode_field(b"a note", "run handler_evil.py", tag=0x6375)
    data = with_entry(b"notes.txt", b"x", central_extra=field, comment=b"a note")
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.getinfo("notes.txt").comment == b"a note"
    assert_corrupt(tmp_path, monkeypatch, capsys, data, "gives the comment 'run handler_evil.py', the header 'a note'")
    fine = with_entry(b"notes.txt", b"x", central_extra=unicode_field(b"a note", "a note", tag=0x6375),
                      comment=b"a note")
    assert markit_file(tmp_path, monkeypatch, capsys, fine)[0] == 0


# Every number read from a zip drives bounded work.


class Collect:
    """A sink that counts what it is given."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, chunk: bytes | memoryview) -> None:
        self.size += len(chunk)

    def done(self, member: Member, complete: bool) -> None:
        pass


def file_archive(tmp_path: Path, data: bytes, limits: Limits | None = None) -> ZipFileArchive:
    path = tmp_path / "a.mar"
    path.write_bytes(data)
    return ZipFileArchive(ByteSource(open(path, "rb"), size=len(data)), str(path), limits or Limits())


def counted(sinks: list[Collect]) -> Callable[[Member], Collect]:
    """An open_sink giving each member a new :class:`Collect`, kept in *sinks*."""

    def open_sink(member: Member) -> Collect:
        sinks.append(Collect())
        return sinks[-1]

    return open_sink


def test_overlapping_entries_are_inflated_once(tmp_path: Path) -> None:
    zeros = 64 << 20
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = deflate.compress(bytes(zeros)) + deflate.flush()  # ~64 KB
    crc = zlib.crc32(bytes(zeros))
    head = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, len(payload), zeros, 5, 0) + b"a.bin"
    central = b"".join(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0x0314, 20, 0, 8, 0, 0x21, crc, len(payload),
                                   zeros, 7, 0, 0, 0, 0, 0o100644 << 16, 0) + f"b{i:02}.bin".encode()
                       for i in range(100))  # 100 entries, one local header: 6.4 GB if each were inflated
    data = head + payload + central + end_record(100, len(central), len(head) + len(payload))
    sinks: list[Collect] = []
    with file_archive(tmp_path, data) as archive:
        archive.scan(counted(sinks))
        assert "bomb" in [p.code for p in archive.problems]
    assert sum(s.size for s in sinks) <= zeros


class Counting(list[Member]):
    """The member list, counting how many members lookups touch."""

    def __init__(self, members: list[Member]) -> None:
        super().__init__(members)
        self.touched = 0

    def __iter__(self) -> Iterator[Member]:
        for member in super().__iter__():
            self.touched += 1
            yield member

    def __getitem__(self, i: SupportsIndex | slice) -> Member:  # type: ignore[override]
        self.touched += 1
        return super().__getitem__(i)  # type: ignore[return-value]


def test_members_read_in_order_are_found_in_one_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    n = 3000  # as many MAR-INF/MANIFEST.json entries: inspect and unpack read each one's first bytes
    with file_archive(tmp_path, build_zip([ZEntry("MAR-INF/MANIFEST.json", b"{}") for _ in range(n)])) as archive:
        members = Counting(archive.index())
        monkeypatch.setattr(archive, "_members", members)  # the list index() hands out, now counting
        for member in list.__iter__(members):
            archive.read(member, Collect())
    assert members.touched <= 10 * n  # a few look-ups per member; a search from the start each time: n * n / 2


def test_data_is_not_read_past_max_size_in_all(tmp_path: Path) -> None:
    limits = Limits(max_size=1 << 20)
    data = build_zip([ZEntry(f"w{i}.bin", bytes(600 << 10), method=0) for i in range(4)])  # 2.4 MB, each < 1 MiB
    sinks: list[Collect] = []
    with file_archive(tmp_path, data, limits) as archive:
        archive.scan(counted(sinks))
    assert 0 < sum(s.size for s in sinks) <= limits.max_size


def stream_archive(data: bytes | io.RawIOBase, limits: Limits | None = None) -> ZipStreamArchive:
    raw = io.BytesIO(data) if isinstance(data, bytes) else data
    return ZipStreamArchive(ByteSource(io.BufferedReader(raw), size=None), "-", limits or Limits())


def test_a_streamed_central_directory_past_max_entries_stops() -> None:
    copies = [central_header(b"a", b"1", 0) for _ in range(50)]  # 50 entries pointing at the one local header
    data = build_zip([ZEntry("a", b"1", method=0)], extra_central=copies)
    with stream_archive(data, Limits(max_entries=10)) as archive:
        archive.scan(lambda m: None)
    assert not archive.complete and "more than 10 entries in the central directory" in archive.problems[-1].message
    assert len(archive.problems) <= 11


class Endless(io.RawIOBase):
    """*head*, then zeros for ever: a pipe that never ends."""

    def __init__(self, head: bytes) -> None:
        self.head = head
        self.served = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = len(buffer)
        part = self.head[self.served : self.served + n]
        buffer[: len(part)] = part
        buffer[len(part) : n] = bytes(n - len(part))
        self.served += n
        return n


def test_bytes_after_the_end_record_are_counted_so_far_then_left() -> None:
    sound = zipped(FILES)
    source = Endless(sound)
    with stream_archive(source) as archive:
        archive.scan(lambda m: None)
    [problem] = archive.problems
    assert problem.code == "corrupt" and problem.message.startswith("at least ")
    assert "bytes after the end record" in problem.message
    assert source.served <= len(sound) + TRAILING_COUNTED + (4 << 20)  # a few 1 MiB chunks past the count
