"""Zip reading: the parsers (zipheaders) against markit's own writer, the layout rules, bounded inflate (flow),
and both readers (zipreader)."""

from __future__ import annotations

import io
import sys
import zipfile
import zlib
from pathlib import Path

import pytest

from markit.formats.base import Member
from markit.formats.flow import inflate
from markit.formats.zip import records as zf
from markit.formats.zip.consistency import compare_headers, layout_problems
from markit.formats.zip.reader import ZipFileArchive
from markit.formats.zip.records import ZipStructureError, find_end, parse_central, parse_local
from markit.formats.zip.stream import ZipStreamArchive
from markit.model.limits import Limits
from markit.storage.sources import ByteSource
from tests.support.hostile import Unseekable, ZEntry, build_zip, sound_files


class Collect:
    """A sink that keeps everything."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.done_with: list[tuple[Member, bool]] = []

    def write(self, chunk: bytes) -> None:
        self.data += chunk

    def done(self, member: Member, complete: bool) -> None:
        self.done_with.append((member, complete))


@pytest.mark.parametrize("zip64", [False, True])
def test_local_header_round_trip(zip64: bool) -> None:
    raw = zf.local_header("ü/w.bin", method=8, date_time=(0, 0x21), crc=0x1234, compressed_size=10, size=20,
                          descriptor=False, zip64=zip64)
    header = parse_local(raw, 7)
    assert (header.name, header.crc, header.compressed_size, header.size) == ("ü/w.bin", 0x1234, 10, 20)
    assert header.offset == 7
    assert header.zip64 == zip64 and header.length == len(raw)


def test_central_header_round_trip_with_zip64_fields() -> None:
    member = zf.ZipMember("w.bin", 0, 0, (0, 0x21), 0xABCD, 5 << 32, 5 << 32, 6 << 32, 0o755)
    header = parse_central(b"junk" + zf.central_header(member), 4, 100)
    assert (header.size, header.compressed_size, header.offset) == (5 << 32, 5 << 32, 6 << 32)
    assert header.mode == 0o100755 and header.member().kind == "file"


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"PK\x03\x04" + bytes(10), "cut short"), (b"XXXX" + bytes(40), "no local header")],
)
def test_bad_local_headers(data: bytes, message: str) -> None:
    with pytest.raises(ZipStructureError, match=message):
        parse_local(data, 0)


def test_bad_zip64_extra() -> None:
    raw = bytearray(zf.local_header("a", method=8, date_time=(0, 0), crc=0, compressed_size=1, size=1,
                                    descriptor=False, zip64=True))
    raw[-16 - 2 : -16] = (40).to_bytes(2, "little")  # the extra field claims more bytes than there are
    with pytest.raises(ZipStructureError, match="extra field"):
        parse_local(bytes(raw), 0)


def test_find_end_with_a_comment_and_zip64() -> None:
    records = zf.end_records(70000, 1000, 500)
    tail = b"x" * 1500 + records + b"comment"
    tail = tail[:-7]
    fixed = bytearray(tail + b"comment")
    fixed[-2 - 7 : -7] = (7).to_bytes(2, "little")
    end = find_end(bytes(fixed), 0, lambda at, n: bytes(fixed[at : at + n]))
    assert (end.count, end.cd_offset, end.cd_size, end.at) == (70000, 1000, 500, 1500)
    with pytest.raises(ZipStructureError, match="end-of-central-directory"):
        find_end(b"no end here", 0, lambda at, n: b"")


def test_compare_headers_names_every_difference() -> None:
    local = parse_local(zf.local_header("evil.py", method=0, date_time=(0, 0), crc=1, compressed_size=2, size=2,
                                        descriptor=False, zip64=False), 0)
    member = zf.ZipMember("good.py", 8, 0, (0, 0), 9, 3, 4, 0, 0o644)
    central = parse_central(zf.central_header(member), 0, 0)
    found = compare_headers(local, central)
    assert len(found) == 5 and "'evil.py'" in found[0] and "method 0" in found[1]


def test_layout() -> None:
    assert layout_problems([(0, 10, "a"), (10, 30, "b")], 30) == []
    [overlap] = layout_problems([(0, 10, "a"), (5, 30, "b")], 30)
    assert overlap.code == "bomb" and "overlapping" in overlap.message
    [gap] = layout_problems([(0, 10, "a"), (12, 30, "b")], 30)
    assert gap.code == "corrupt" and "bytes 10-11" in gap.message
    assert [p.code for p in layout_problems([(0, 40, "a")], 30)] == ["bomb"]
    assert [p.code for p in layout_problems([(0, 10, "a"), (0, 10, "b")], 10)] == ["bomb"]


def _deflated(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def _reader(data: bytes):  # type: ignore[no-untyped-def]
    stream = io.BytesIO(data)
    return stream.read


@pytest.mark.parametrize(
    ("declared", "compressed", "budget", "code"),
    [
        (10_000, True, 1 << 30, None),
        (9_999, True, 1 << 30, "bomb"),  # longer than declared
        (None, False, 5_000, "bomb"),  # past the budget
        (10_001, True, 1 << 30, None),  # shorter: the caller compares sizes
    ],
)
def test_inflate_never_produces_more_than_allowed(declared: int | None, compressed: bool, budget: int,
                                                  code: str | None) -> None:
    payload = _deflated(b"a" * 10_000)
    sink = Collect()
    flow = inflate(_reader(payload + b"tail"), sink, compressed=len(payload) if compressed else None,
                   declared=declared, budget=budget, max_ratio=1e9)
    assert (flow.error or (None,))[0] == code
    assert len(sink.data) <= min(declared or budget, budget)
    if code is None:
        assert flow.produced == 10_000 and flow.consumed == len(payload)


def test_inflate_of_unknown_length_stops_on_ratio_and_hands_back_what_follows() -> None:
    payload = _deflated(bytes(8 << 20))
    flow = inflate(_reader(payload), Collect(), compressed=None, declared=None, budget=1 << 40, max_ratio=100)
    assert flow.error is not None and "100 times" in flow.error[1]
    flow = inflate(_reader(_deflated(b"abc") + b"NEXT"), Collect(), compressed=None, declared=None, budget=99,
                   max_ratio=100)
    assert flow.error is None and flow.unused.startswith(b"NEXT")


@pytest.mark.parametrize(("payload", "words"), [(b"\xff" * 20, "invalid"), (_deflated(b"x" * 1000)[:5], "ends early")])
def test_inflate_of_damaged_data(payload: bytes, words: str) -> None:
    flow = inflate(_reader(payload), Collect(), compressed=len(payload), declared=1000, budget=1 << 30, max_ratio=1e9)
    assert flow.error is not None and flow.error[0] == "corrupt" and words in flow.error[1]


def _file_archive(tmp_path: Path, data: bytes, limits: Limits | None = None) -> ZipFileArchive:
    path = tmp_path / "a.mar"
    path.write_bytes(data)
    f = open(path, "rb")  # noqa: SIM115 - the archive closes it
    return ZipFileArchive(ByteSource(f, size=len(data)), str(path), limits or Limits())


def _stream_archive(data: bytes, limits: Limits | None = None) -> ZipStreamArchive:
    return ZipStreamArchive(ByteSource(io.BufferedReader(io.BytesIO(data)), size=None), "-",  # type: ignore[arg-type]
                            limits or Limits())


def _read_all(archive: ZipFileArchive | ZipStreamArchive) -> dict[str, bytes]:
    sinks: dict[str, Collect] = {}

    def open_sink(member: Member) -> Collect:
        sinks[member.name] = Collect()
        return sinks[member.name]

    archive.scan(open_sink)
    return {name: bytes(sink.data) for name, sink in sinks.items() if sink.done_with and sink.done_with[0][1]}


@pytest.mark.parametrize("kind", ["file", "stream"])
@pytest.mark.parametrize("seekable", [True, False])
def test_zipfile_output_reads_back(tmp_path: Path, kind: str, seekable: bool) -> None:
    files = sound_files()
    out = io.BytesIO()
    target = out if seekable else Unseekable(out)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:  # type: ignore[arg-type]
        for name, data in files.items():
            z.writestr(name, data)
        z.comment = b"a comment"
    data = out.getvalue()
    archive = _file_archive(tmp_path, data) if kind == "file" else _stream_archive(data)
    assert _read_all(archive) == files
    assert archive.problems == [] and archive.complete



    def flush(self) -> None:
        pass


def test_zip64_entries_written_by_zipfile(tmp_path: Path) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z, z.open("big.bin", "w", force_zip64=True) as f:
        f.write(b"x" * 1000)
    for archive in (_file_archive(tmp_path, out.getvalue()), _stream_archive(out.getvalue())):
        assert _read_all(archive) == {"big.bin": b"x" * 1000} and archive.problems == []


@pytest.mark.parametrize("kind", ["file", "stream"])
def test_two_entries_sharing_data_are_a_bomb(tmp_path: Path, kind: str) -> None:
    data = b"A" * 100_000
    zip_bytes = build_zip([ZEntry("a.bin", data), ZEntry("b.bin", data, central={"offset": 0}, local_name=b"a.bin")])
    archive = _file_archive(tmp_path, zip_bytes) if kind == "file" else _stream_archive(zip_bytes)
    archive.check_structure()
    archive.scan(lambda m: None)
    assert "bomb" in [p.code for p in archive.problems]


def test_data_running_into_the_next_entry_is_a_bomb_on_every_python(tmp_path: Path) -> None:
    first = zlib.compressobj(6, zlib.DEFLATED, -15)
    payload = first.compress(b"x" * 5000) + first.flush()
    zip_bytes = build_zip([ZEntry("a.bin", b"x" * 5000, central={"csize": len(payload) + 60}), ZEntry("b.bin", b"y")])
    archive = _file_archive(tmp_path, zip_bytes)
    archive.check_structure()
    assert "bomb" in [p.code for p in archive.problems]
    if sys.version_info >= (3, 12, 2) or (3, 11, 8) <= sys.version_info < (3, 12):  # Python's own check, too
        with zipfile.ZipFile(io.BytesIO(zip_bytes)) as z, pytest.raises(zipfile.BadZipFile, match="Overlapped"):
            z.read("a.bin")


def test_stored_entry_with_descriptor_stops_a_stream() -> None:
    archive = _stream_archive(build_zip([ZEntry("a", b"abc", method=0, descriptor=True)]))
    archive.scan(lambda m: None)
    assert not archive.complete and "cannot be found in a stream" in archive.problems[-1].message


def test_a_stream_descriptor_that_lies() -> None:
    archive = _stream_archive(build_zip([ZEntry("a", b"abc" * 100, descriptor=True, size=5)]))
    _read_all(archive)
    assert [p.code for p in archive.problems] == ["corrupt"] and "data descriptor says" in archive.problems[0].message


def test_a_local_entry_missing_from_the_central_directory_is_seen_in_a_stream() -> None:
    hidden = build_zip([ZEntry("hidden.py", b"x")])
    visible = build_zip([ZEntry("a", b"1")])
    # the hidden entry's local header and data sit before the central directory of a one-entry zip
    cd_at = int.from_bytes(visible[-6:-2], "little")
    forged = visible[:cd_at] + hidden[: int.from_bytes(hidden[-6:-2], "little")] + visible[cd_at:]
    forged = forged[:-6] + (cd_at + int.from_bytes(hidden[-6:-2], "little")).to_bytes(4, "little") + forged[-2:]
    stream = _stream_archive(forged)
    assert set(_read_all(stream)) == {"a", "hidden.py"}
    assert any("not in the central directory" in p.message for p in stream.problems)
    with zipfile.ZipFile(io.BytesIO(forged)) as z:
        assert z.namelist() == ["a"]  # what Python sees


def test_zip_file_with_more_entries_than_allowed(tmp_path: Path) -> None:
    archive = _file_archive(tmp_path, build_zip([ZEntry(f"f{i}", b"") for i in range(5)]), Limits(max_entries=3))
    assert len(archive.index()) == 3 and not archive.complete and archive.problems[0].code == "bomb"


# Cost per entry: the central directory in windows, one read per small entry, the same verdicts either way.

LIARS = [  # each entry's local header disagrees with its central one in one way (stored entries: the fast path)
    ZEntry("crc.bin", b"abc", method=0, local={"crc": 1}),
    ZEntry("size.bin", b"abc", method=0, local={"size": 2, "csize": 2}),
    ZEntry("method.bin", b"abc", method=0, local={"method": 8}),
    ZEntry("flags.bin", b"abc", method=0, local={"flags": 8}),
    ZEntry("name.bin", b"abc", method=0, local_name=b"evil.bin"),
    ZEntry("short.bin", b"abcdef", method=0, local={"size": 3, "csize": 3}, central={"size": 3, "csize": 3}),
    ZEntry("ok.bin", b"abc", method=0),
    ZEntry("deflated.bin", b"abc" * 50),
    ZEntry("ü.bin", b"abc", method=0, local={"crc": 2}),  # not ASCII: the general path
]


@pytest.mark.parametrize("liar", range(len(LIARS)))
def test_one_pass_and_two_passes_find_the_same_problems_in_the_same_order(tmp_path: Path, liar: int) -> None:
    data = build_zip([ZEntry("first.bin", b"1" * 10, method=0), LIARS[liar], ZEntry("last.bin", b"2", method=0)])
    with _file_archive(tmp_path, data) as two:  # unpack: every header first, then the data
        two.check_structure()
        two_data = _read_all(two)
    with _file_archive(tmp_path, data) as one:  # verify: each header, then its data, in one pass
        one_data = _read_all(one)
    assert one.problems == two.problems and one_data == two_data
    assert bool(one.problems) == (LIARS[liar].name not in ("ok.bin", "deflated.bin"))


def test_the_central_directory_read_in_windows_gives_what_zipfile_lists(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from markit.formats.zip import reader

    monkeypatch.setattr(reader, "WINDOW", 61)  # every entry straddles a window's end, some several
    entries = [ZEntry(f"d{i % 3}/{'x' * (i % 40)}{i}.bin", bytes([i % 256]) * i, method=0 if i % 2 else 8)
               for i in range(300)]
    entries.append(ZEntry("ü/unicode.bin", b"u"))  # not ASCII: the general parser, in the middle of a window
    data = build_zip(entries)
    with _file_archive(tmp_path, data) as archive, zipfile.ZipFile(io.BytesIO(data)) as z:
        listed = [(m.name, m.size, m.compressed_size, m.crc, m.offset) for m in archive.index()]
        assert listed == [(i.filename, i.file_size, i.compress_size, i.CRC, i.header_offset) for i in z.infolist()]
        assert archive.complete and not archive.problems
        assert _read_all(archive) == {i.filename: z.read(i) for i in z.infolist()}
        assert not archive.problems


def test_a_central_directory_cut_inside_an_entry_is_corrupt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from markit.formats.zip import reader

    monkeypatch.setattr(reader, "WINDOW", 50)
    good = build_zip([ZEntry(f"{i}.bin", b"x", method=0) for i in range(5)])
    cd_size = int.from_bytes(good[-10:-6], "little")
    data = good[:-22] + good[-22:-10] + (cd_size + 30).to_bytes(4, "little") + good[-6:]  # says 30 bytes more
    with _file_archive(tmp_path, data) as archive:
        archive.index()
    assert not archive.complete and archive.problems[0].code == "corrupt"


def _counting_preads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    import os

    sizes: list[int] = []
    real = os.pread

    def pread(fd: int, n: int, offset: int) -> bytes:
        sizes.append(n)
        return real(fd, n, offset)

    monkeypatch.setattr(os, "pread", pread)
    return sizes


def test_verify_reads_each_small_stored_entry_with_one_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    n = 200
    data = build_zip([ZEntry(f"d/{i}.bin", bytes(1000), method=0) for i in range(n)])
    with _file_archive(tmp_path, data) as archive:
        archive.index()
        reads = _counting_preads(monkeypatch)
        assert len(_read_all(archive)) == n and not archive.problems
    assert len(reads) <= n + 2  # its local header and its data together; the end of the entries


def test_inspect_reads_only_the_headers_of_the_entries_it_reads(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from markit.formats.base import read_small

    data = build_zip([ZEntry(f"d/{i}.bin", bytes(1000), method=0) for i in range(500)] +
                     [ZEntry("MAR-INF/MANIFEST.json", b"{}")])
    with _file_archive(tmp_path, data) as archive:
        reads = _counting_preads(monkeypatch)
        members = archive.index()
        assert read_small(archive, members[-1], 100) == b"{}"
    assert len(reads) <= 8  # the tail, the directory, then one local header and the data: not 500 headers


def test_read_before_check_structure_reports_nothing_twice(tmp_path: Path) -> None:
    data = build_zip([ZEntry("a.bin", b"abc", method=0, local={"crc": 1}), ZEntry("b.bin", b"b", method=0)])
    with _file_archive(tmp_path, data) as archive:
        sink = Collect()
        archive.read(archive.index()[0], sink)
        assert bytes(sink.data) == b"abc" and not archive.problems  # reported by check_structure, once
        archive.check_structure()
        assert [p.path for p in archive.problems] == ["a.bin"]
