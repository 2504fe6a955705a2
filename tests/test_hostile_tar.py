"""Hostile tar headers: negative and non-decimal sizes, over-long names, header bytes against the limits.

Every archive is built here, header by header: ``tarfile.TarInfo.tobuf`` writes a sound block, then
its size field is set to any bytes and its checksum recomputed, so the reader cannot discard the
header early. Outcomes are checked through the reader (:class:`TarArchive`), through the CLI in
this process (from a file and from stdin), and in real processes where only the kernel can tell:
a hang (a timeout) and peak memory (``wait4``).
"""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Iterable
from pathlib import Path

import pytest

from markit.formats.base import Member
from markit.formats.tar.reader import TarArchive, parse_pax
from markit.model.limits import Limits
from markit.storage.sources import ByteSource
from tests.support.hostile import run_main, sound_files
from tests.support.peak import run_measured
from tests.test_read_fuzz import check_outcome, every_file, time_limit

TIME_LIMIT = 20  # seconds for one command on a small archive, far above the ~0.3 s it takes
MEMORY_LIMIT = 64 << 20  # bytes of peak RSS: the bound docs/security.md promises, whatever the input declares
LONG = 5000  # bytes of a name no filesystem takes (over 4096)


def header(name: str, *, kind: bytes = tarfile.REGTYPE, size: int = 0, field: bytes | None = None,
           linkname: str = "", extended: bool = False) -> bytes:
    """One ustar header block; *field* replaces its 12-byte size field, *extended* sets the GNU sparse flag."""
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname = kind, size, linkname
    block = bytearray(info.tobuf(tarfile.USTAR_FORMAT))
    if field is not None:
        block[124:136] = field.ljust(12, b"\x00")[:12]
    block[482] = int(extended)
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\x00 " % sum(block)
    return bytes(block)


def padded(data: bytes) -> bytes:
    return data + bytes(-len(data) % tarfile.BLOCKSIZE)


def member(name: str, data: bytes = b"", **kw: object) -> bytes:
    """A member's header and its data, padded."""
    return header(name, size=len(data), **kw) + padded(data)  # type: ignore[arg-type]


def gnu_long(kind: bytes, value: bytes, field: bytes | None = None) -> bytes:
    """A GNU long name (``L``) or long link (``K``) header and its data."""
    return header("././@LongLink", kind=kind, size=len(value) + 1, field=field) + padded(value + b"\x00")


def pax_record(key: bytes, value: bytes) -> bytes:
    """``"%d key=value\\n"``, the length counting its own digits."""
    rest = b" " + key + b"=" + value + b"\n"
    n = len(rest)
    while n != len(str(n)) + len(rest):
        n = len(str(n)) + len(rest)
    return str(n).encode() + rest


def pax(records: Iterable[tuple[bytes, bytes]], kind: bytes = tarfile.XHDTYPE) -> bytes:
    """A pax extended header (``x``, or ``g`` for global) holding *records*."""
    body = b"".join(pax_record(k, v) for k, v in records)
    return header("PaxHeader", kind=kind, size=len(body)) + padded(body)


def model() -> bytes:
    """A sound model under ``m/``: inspect, verify and unpack accept it as it is."""
    return b"".join(member(f"m/{name}", data) for name, data in sound_files().items())


def tar(*parts: bytes, gz: bool = False) -> bytes:
    """The sound model, then *parts*, then the end-of-archive marker."""
    data = model() + b"".join(parts) + bytes(2 * tarfile.BLOCKSIZE)
    return gzip.compress(data, mtime=0) if gz else data


def archive_of(data: bytes, limits: Limits | None = None) -> TarArchive:
    source = ByteSource(io.BufferedReader(io.BytesIO(data)), size=None)  # type: ignore[arg-type]
    return TarArchive(source, "-", limits or Limits(), gzipped=data[:2] == b"\x1f\x8b")


def scan(archive: TarArchive, *, sinks: bool = True) -> list[Member]:
    """The members, every file's data read (*sinks*) or skipped."""

    class Drop:
        def write(self, chunk: bytes | memoryview) -> None:
            pass

        def done(self, member: Member, complete: bool) -> None:
            pass

    return archive.scan(lambda m: Drop() if sinks and m.kind == "file" else None)


def codes(archive: TarArchive) -> list[str]:
    return [p.code for p in archive.problems]


MINUS_ONE = b"-0000000001"  # octal text tarfile.TarInfo.frombuf reads as -1
BASE256_MINUS_ONE = b"\xff" * 12  # base-256, two's complement: -1
SIZES = {
    "file octal -1": member("m/neg", b"x" * 600, field=MINUS_ONE),
    "file base-256 -1": member("m/neg", b"x" * 600, field=BASE256_MINUS_ONE),
    "file base-256 -1 GiB": member("m/neg", field=b"\xff" * 8 + b"\xc0\x00\x00\x00"),
    "unknown type -8 MiB": member("m/v", kind=b"V", field=b"-40000000"),
    "symlink -1": member("m/l", kind=tarfile.SYMTYPE, linkname="a", field=MINUS_ONE),
    "GNU long name -1": gnu_long(tarfile.GNUTYPE_LONGNAME, b"m/x", MINUS_ONE) + member("m/x", b"y" * 5000),
    "GNU long link -1": gnu_long(tarfile.GNUTYPE_LONGLINK, b"m/x", MINUS_ONE) + member("m/x", b"y" * 5000),
    "pax header -1": header("PaxHeader", kind=tarfile.XHDTYPE, field=MINUS_ONE) + member("m/x", b"y" * 5000),
    "file octal +1": member("m/plus", b"x", field=b"+0000000001"),
    "file octal 1_0": member("m/under", b"x" * 8, field=b"00000001_0"),
    "pax size superscript two": pax([(b"size", "²".encode())]) + member("m/sq", b"xx"),
    "pax size fullwidth 12": pax([(b"size", "１２".encode())]) + member("m/fw", b"x" * 12),
}


@pytest.mark.parametrize("gz", [False, True], ids=["tar", "tar.gz"])
@pytest.mark.parametrize("case", sorted(SIZES))
def test_a_bad_size_is_corrupt_and_stops_the_reader(case: str, gz: bool) -> None:
    archive = archive_of(tar(SIZES[case], gz=gz))
    with time_limit(TIME_LIMIT):
        scan(archive)
    assert codes(archive) == ["corrupt"] and not archive.complete, archive.problems
    assert "size" in archive.problems[0].message and "expected" in archive.problems[0].message


def test_the_sound_model_is_accepted() -> None:
    """The baseline every other case spoils: nothing but the hostile part is wrong."""
    archive = archive_of(tar(member("m/extra", b"x" * 600), gz=True))
    scan(archive)
    assert archive.problems == [] and archive.complete


@pytest.mark.parametrize("via", ["file", "stdin"])
@pytest.mark.parametrize(("case", "gz"), [("file octal -1", False), ("unknown type -8 MiB", True),
                                          ("file octal 1_0", True), ("pax size superscript two", True),
                                          ("pax size fullwidth 12", True)])
def test_the_cli_says_corrupt_for_a_bad_size(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path, case: str, gz: bool, via: str) -> None:
    """In this process; a negative size in a tar.gz, which used to hang, runs in real processes below."""
    data, name = tar(SIZES[case], gz=gz), "x.tar.gz" if gz else "x.tar"
    (tmp_path / name).write_bytes(data)
    monkeypatch.chdir(tmp_path)
    target, stdin = ("-", data) if via == "stdin" else (name, None)
    with time_limit(TIME_LIMIT):
        for command in (["verify", target], ["unpack", target, "-d", "out"], ["inspect", target]):
            status, out, err = run_main(monkeypatch, capsys, *command, stdin=stdin)
            check_outcome(status, out, err)
            assert status == 1, (command, out, err)
            assert command[0] == "inspect" or "error corrupt:" in err, (command, err)
    assert every_file(tmp_path) == {name}


def run_real(args: list[str], cwd: Path, stdin: Iterable[bytes] = ()) -> tuple[int, int, str]:
    """(exit status, peak RSS in bytes, stderr) of ``python -m markit ARGS``; killed after TIME_LIMIT s."""
    return run_measured(args, cwd, stdin, timeout=TIME_LIMIT)


def assert_refused(result: tuple[int, int, str], code: str) -> None:
    status, peak, err = result
    assert status == 1, f"exit {status} (killed after {TIME_LIMIT} s?): {err[-2000:]}"
    assert "Traceback" not in err and "internal error" not in err, err[-2000:]
    assert code in err, err[-2000:]
    assert peak < MEMORY_LIMIT, f"peak RSS {peak >> 20} MiB"


@pytest.mark.parametrize("via", ["file", "stdin"])
def test_a_negative_size_in_a_tgz_does_not_hang(tmp_path: Path, via: str) -> None:
    data = tar(SIZES["file octal -1"], gz=True)
    (tmp_path / "x.tar.gz").write_bytes(data)
    target, stdin = ("-", [data]) if via == "stdin" else ("x.tar.gz", [])
    assert_refused(run_real(["verify", target], tmp_path, stdin), "error corrupt:")
    assert_refused(run_real(["unpack", target, "-d", "out"], tmp_path, stdin), "error corrupt:")
    assert_refused(run_real(["inspect", target], tmp_path, stdin), "size")
    assert every_file(tmp_path) == {"x.tar.gz"}


def test_a_negative_long_name_size_does_not_read_the_rest_into_memory(tmp_path: Path) -> None:
    head = model() + gnu_long(tarfile.GNUTYPE_LONGNAME, b"m/x", MINUS_ONE) + header("m/x", size=96 << 20)
    rest = (bytes(1 << 20) for _ in range(96))  # 96 MiB through a pipe: held whole, it is over the bound
    assert_refused(run_real(["verify", "-"], tmp_path, [head, *rest]), "error corrupt:")
    assert every_file(tmp_path) == set()


def test_a_too_long_name_is_unsafe_and_not_listed() -> None:
    data = tar(pax([(b"path", b"m/" + b"a" * LONG), (b"comment", b"c" * 100_000)]) + member("m/p", b"pp"),
               gnu_long(tarfile.GNUTYPE_LONGNAME, b"m/" + b"b" * LONG) + member("m/g", b"gg"),
               pax([(b"path", "m/é".encode() * 1025)]) + member("m/e", b"ee"),
               member("m/after", b"ok"), gz=True)
    archive = archive_of(data)
    members = scan(archive)
    assert codes(archive) == ["unsafe-path"] * 3 and archive.complete
    assert [m.name for m in members][-1] == "m/after" and all(len(m.name) < 100 for m in members)
    for p in archive.problems:
        assert len(p.message) < 400 and len(p.path or "") < 200, p
        assert "over 4,096 bytes" in p.message and "expected" in p.message
    assert archive.problems[0].message.startswith("entry 'm/aaaa") and "..." in archive.problems[0].message


@pytest.mark.parametrize("long", [pax([(b"linkpath", b"t" * LONG)]),
                                  gnu_long(tarfile.GNUTYPE_LONGLINK, b"t" * LONG)], ids=["pax", "gnu"])
def test_a_too_long_link_target_is_unsafe(long: bytes) -> None:
    archive = archive_of(tar(long + member("m/link", kind=tarfile.SYMTYPE, linkname="short")))
    members = scan(archive)
    assert codes(archive) == ["unsafe-path"] and "m/link" not in [m.name for m in members]
    assert "link target" in archive.problems[0].message and len(archive.problems[0].message) < 400


def test_a_name_of_4096_bytes_is_still_read() -> None:
    name = "m/" + "d/" * 2046 + "f"  # 4095 bytes, every component short
    archive = archive_of(tar(pax([(b"path", name.encode())]) + member("m/x", b"x")))
    members = scan(archive)
    assert archive.problems == [] and name in [m.name for m in members]


def test_a_gnu_long_name_over_64_kib_is_not_read() -> None:
    archive = archive_of(tar(gnu_long(tarfile.GNUTYPE_LONGNAME, b"m/" + b"n" * (100 << 10)) + member("m/x")))
    scan(archive)
    assert codes(archive) == ["bomb"] and not archive.complete


def test_parse_pax_keeps_only_what_markit_uses() -> None:
    data = b"".join(pax_record(k, v) for k, v in [(b"comment", b"c" * 10_000), (b"path", b"p" * 10_000),
                                                  (b"size", b"1" * 10_000), (b"GNU.sparse.map", b"0,1" * 1000),
                                                  (b"GNU.sparse.size", b"9"), (b"mtime", b"1.5")])
    found = parse_pax(data)
    assert set(found) == {"path", "size", "GNU.sparse."} and found["GNU.sparse."] == ""
    assert 4096 < len(found["path"]) < 5000 and len(found["size"]) < 5000


def test_parse_pax_record_lengths_are_at_most_20_ascii_digits() -> None:
    for bad in ["²".encode() + b" path=a\n", b"9" * 30 + b" path=a\n", b"+9 path=a\n"]:
        with pytest.raises(ValueError, match="has no length"):
            parse_pax(bad)


def write_long_names(path: Path, count: int) -> None:
    """*count* members, each named by a 1 MiB pax ``path`` (the most a pax header may hold), gzipped."""
    name = b"m/" + b"n" * ((1 << 20) - 100)
    with gzip.open(path, "wb", compresslevel=6) as out:
        out.write(model())
        for i in range(count):
            out.write(pax([(b"path", name + b"%d" % i)]) + member(f"m/{i}"))
        out.write(bytes(1024))


@pytest.mark.parametrize("via", ["file", "stdin"])
def test_400_long_names_stay_in_bounded_memory(tmp_path: Path, via: str) -> None:
    write_long_names(tmp_path / "x.tar.gz", 400)
    data = (tmp_path / "x.tar.gz").read_bytes()
    target, stdin = ("-", [data]) if via == "stdin" else ("x.tar.gz", [])
    found = run_real(["verify", target, "--max-ratio", "1000000"], tmp_path, stdin)
    assert_refused(found, "error unsafe-path:")
    assert found[2].count("error unsafe-path:") == 400 and max(len(line) for line in found[2].splitlines()) < 400
    assert_refused(run_real(["unpack", target, "-d", "out", "--max-ratio", "1000000"], tmp_path, stdin),
                   "error unsafe-path:")
    assert_refused(run_real(["inspect", target], tmp_path, stdin), "gzip stream inflates")  # the ratio, headers too
    assert every_file(tmp_path) == {"x.tar.gz"}


def test_header_bytes_count_towards_max_size() -> None:
    comment = [(b"comment", b"c" * (600 << 10))]
    archive = archive_of(tar(*(pax(comment) + member(f"m/{i}") for i in range(3))), Limits(max_size=1 << 20))
    scan(archive)
    assert codes(archive) == ["bomb"] and "--max-size" in archive.problems[0].message


def test_the_gzip_ratio_is_judged_while_reading_headers() -> None:
    comment = [(b"comment", b"c" * (1000 << 10))]
    archive = archive_of(tar(*(pax(comment) + member(f"m/{i}") for i in range(32)), gz=True), Limits(max_ratio=100))
    scan(archive)
    assert codes(archive) == ["bomb"] and "100 times" in archive.problems[0].message
    assert archive.data.position < 4 << 20


def test_the_gzip_ratio_is_judged_while_skipping_data() -> None:
    archive = archive_of(tar(member("m/zeros", bytes(16 << 20)), gz=True), Limits(max_ratio=100))
    scan(archive, sinks=False)
    assert codes(archive) == ["bomb"] and archive.data.position < 4 << 20


def test_gnu_sparse_extension_blocks_count_as_headers() -> None:
    block = bytearray(tarfile.BLOCKSIZE)
    block[504] = 1  # "another extension block follows"
    sparse = header("m/s", kind=tarfile.GNUTYPE_SPARSE, extended=True) + bytes(block) * (16 << 11)
    archive = archive_of(tar(sparse, gz=True), Limits(max_ratio=100))
    scan(archive)
    assert codes(archive) == ["bomb"] and archive.data.position < 8 << 20  # of 16 MiB
