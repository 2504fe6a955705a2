"""Issue 9, items 2, 4, 8 and 9: names no filesystem takes, trees deeper than Python recurses,
control characters in ``RECORD`` and in names, the ratio default and the free space where DEST goes.

Every hostile archive is built here (``tests/support/hostile.py``'s byte builders, ``tarfile``
headers) and read from a file and from stdin: each ends in its problem code, exit 1, nothing left.
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import tarfile
import time
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

import markit.read.tree
from markit.formats.base import Member
from markit.model.limits import Limits
from markit.model.names import normalize, unsafe_reason
from markit.read.entries import check_duplicates, check_kinds, check_paths, excluded_problems
from tests.support.hostile import (
    TEntry,
    ZEntry,
    build_tar,
    build_zip,
    folder_of,
    record_bytes,
    run_main,
    sound_files,
    tgz_of,
)

VIA = ["file", "stdin"]


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty current folder; afterwards everything is removed by ``rm -rf`` (pytest's cleanup recurses)."""
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    yield folder
    monkeypatch.chdir(tmp_path.parent)
    subprocess.run(["rm", "-rf", str(tmp_path)], check=False)


def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], via: str, data: bytes, command: str,
        *args: str, name: str = "h.mar") -> tuple[int, str, str]:
    """``markit COMMAND ARCHIVE ARGS`` with *data* as a file beside the working folder, or on stdin."""
    path = Path.cwd().parent / name
    path.write_bytes(data)
    archive = "-" if via == "stdin" else str(path)
    return run_main(monkeypatch, capsys, command, archive, *args, stdin=data if via == "stdin" else None)


def tgz_with(*extra: TEntry) -> bytes:
    return build_tar([*(TEntry("m/" + n, d) for n, d in sound_files().items()), *extra])


def refused_and_clean(status: int, err: str, work: Path, code: str) -> None:
    assert status == 1 and f"error {code}" in err and "refused to unpack" in err, err[-2000:]
    assert "internal error" not in err and "Traceback" not in err
    assert os.listdir(work) == []


# --- 2: names no filesystem can create -----------------------------------------------------------------------


TOO_LONG = {
    "name-over-4096-bytes": ("ab/" * 1365 + "abc", "over 4,096 bytes"),
    "component-over-255-bytes": ("x" * 256 + "/f", "over 255 bytes"),
    "utf8-component-over-255-bytes": ("é" * 128, "over 255 bytes"),  # 128 characters, 256 bytes
}


def test_length_limits_are_exact_in_utf8_bytes() -> None:
    assert unsafe_reason("ab/" * 1365 + "a") is None  # 4,096 bytes
    assert unsafe_reason("x" * 255 + "/" + "é" * 127 + "a") is None  # 255 and 255 bytes
    for name, reason in TOO_LONG.values():
        found = unsafe_reason(name)
        assert found is not None and reason in found


@pytest.mark.parametrize("case", sorted(TOO_LONG))
@pytest.mark.parametrize("via", VIA)
def test_names_past_the_limits_are_unsafe(work: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str], case: str, via: str) -> None:
    name, reason = TOO_LONG[case]
    data = tgz_with(TEntry("m/" + name, b"x"))
    status, out, err = cli(monkeypatch, capsys, via, data, "verify", name="h.tar.gz")
    assert status == 1 and "error unsafe-path" in err and reason in err and "FAILED (1 error" in out, err
    refused_and_clean(*cli(monkeypatch, capsys, via, data, "unpack", "-d", "out", name="h.tar.gz")[::2], work,
                      "unsafe-path")


@pytest.mark.parametrize("via", VIA)
def test_a_name_at_the_limit_unpacks_under_a_top_folder(work: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str], via: str) -> None:
    """4,096 bytes with the tar's top folder: 1,365 folders deep, past the recursion limit, within every filesystem's."""
    name = "ab/" * 1364 + "ab"
    data = tgz_with(TEntry("m/" + name, b"at the limit"))
    status, out, err = cli(monkeypatch, capsys, via, data, "verify", name="h.tar.gz")
    assert "FAILED" not in out
    assert status == 0 and "unsafe-path" not in err, err[-2000:]
    status, _, err = cli(monkeypatch, capsys, via, data, "unpack", "-d", "out", name="h.tar.gz")
    assert status == 0, err[-2000:]
    fd = os.open(work / "out", os.O_RDONLY)
    for part in name.split("/"):  # one component at a time: 4,096 bytes and a NUL are past PATH_MAX
        inner = os.open(part, os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = inner
    assert os.read(fd, 100) == b"at the limit"
    os.close(fd)


def test_names_past_the_limits_get_no_other_check() -> None:
    long = "d/" * 2100
    members = [Member(long + ".hidden", "file", 1), Member(long + ".hidden/x", "file", 1),
               Member(long + "l", "symlink", 0, detail="/etc"), Member("./" + long + "l", "file", 1)]
    found = check_paths(members) + check_kinds(members) + check_duplicates(members) + excluded_problems(members)
    assert [p.code for p in found] == ["unsafe-path"] * 4
    assert all("(4,2" in p.message and len(p.message) < 4300 for p in found)  # a message cuts the name


@pytest.mark.parametrize("via", VIA)
@pytest.mark.parametrize("command", ["verify", "unpack"])
def test_a_million_byte_name_is_refused_at_once(tmp_path: Path, via: str, command: str) -> None:
    """The 1.1 KB tar.gz of the issue: one name of 500,000 folders. It hung verify (a prefix per folder)."""
    data = tgz_with(TEntry("m/" + "a/" * 500_000 + "f", b"x"))
    assert len(data) < 4096
    (tmp_path / "h.tar.gz").write_bytes(data)
    archive = "-" if via == "stdin" else str(tmp_path / "h.tar.gz")
    args = [command, archive] + (["-d", "out"] if command == "unpack" else [])
    done = subprocess.run([sys.executable, "-m", "markit", *args], cwd=tmp_path, input=data if via == "stdin" else None,
                          capture_output=True, timeout=60, check=False)
    err = done.stderr.decode()
    assert done.returncode == 1 and "error unsafe-path" in err and "over 4,096 bytes" in err
    assert len(err) < 20_000 and "internal error" not in err  # the name is cut in the message
    assert sorted(os.listdir(tmp_path)) == ["h.tar.gz"]


def _reference(members: list[Member]) -> set[str]:
    """The definition: names with a proper folder prefix that is a non-folder entry (the former quadratic loop)."""
    seen: dict[str, Member] = {}
    for m in members:
        seen.setdefault(normalize(m.name), m)
    found = set()
    for key, m in seen.items():
        parts = key.split("/")
        if any((p := seen.get("/".join(parts[:i]))) is not None and p.kind != "dir" for i in range(1, len(parts))):
            found.add(m.name)
    return found


def test_file_and_folder_clashes_are_found_in_linear_time() -> None:
    rng = random.Random(9)
    for _ in range(400):  # '-', '!' and '.' sort before '/': the sweep must still see 'a/x' inside 'a'
        names = ["/".join(rng.choice(["a", "b", "a-", "a.", "!"]) for _ in range(rng.randint(1, 4)))
                 for _ in range(rng.randint(1, 12))]
        members = [Member(n + ("/" if kind == "dir" else ""), kind) for n in names
                   for kind in [rng.choice(["file", "dir", "symlink"])]]
        found = {p.path for p in check_duplicates(members) if "its folder" in p.message}
        assert found == _reference(members), names
    deep = [Member("d/" * 2000 + f"f{i}", "file", 1) for i in range(300)]  # 4 KB, 2,000 levels: the most allowed
    start = time.perf_counter()
    assert check_duplicates([*deep, Member("d/" * 2000 + "f7/x", "file", 1)])[0].path == "d/" * 2000 + "f7/x"
    assert time.perf_counter() - start < 2.0  # was ~2,000 prefixes of ~2 KB joined and hashed per name


# --- 4: trees deeper than Python recurses ------------------------------------------------------------------------


def depth_of(folder: Path) -> tuple[int, bytes]:
    """How many ``d`` folders are nested under *folder*, and the bytes of ``f`` at the bottom."""
    fd = os.open(folder, os.O_RDONLY)
    levels = 0
    try:
        while "d" in os.listdir(fd):
            inner = os.open("d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd, levels = inner, levels + 1
        leaf = os.open("f", os.O_RDONLY, dir_fd=fd)
        data = os.read(leaf, 100)
        os.close(leaf)
    finally:
        os.close(fd)
    return levels, data


def deep_folder(path: Path, levels: int) -> None:
    """A model folder with ``d/`` * *levels* ``f`` in it, made relative to open folders (no PATH_MAX, no recursion)."""
    path.mkdir()
    folder_of(path, sound_files())
    fd = os.open(path, os.O_RDONLY)
    for _ in range(levels):
        os.mkdir("d", dir_fd=fd)
        inner = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = inner
    leaf = os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
    os.write(leaf, b"deep")
    os.close(leaf)
    os.close(fd)


@pytest.mark.parametrize("levels", [1100, 2000])
@pytest.mark.parametrize("via", VIA)
def test_deep_trees_unpack_and_are_replaced(work: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str], levels: int, via: str) -> None:
    data = tgz_with(TEntry("m/" + "d/" * levels + "f", b"deep"))
    status, _, err = cli(monkeypatch, capsys, via, data, "unpack", "-d", "out", name="h.tar.gz")
    assert status == 0, err[-2000:]
    assert depth_of(work / "out") == (levels, b"deep")
    status, _, err = cli(monkeypatch, capsys, via, data, "unpack", "-d", "out", "--force", name="h.tar.gz")
    assert status == 0, err[-2000:]
    assert os.listdir(work) == ["out"] and depth_of(work / "out") == (levels, b"deep")  # no .out.markit-old-*


@pytest.mark.parametrize(("levels", "via"), [(1100, "stdin"), (2000, "file")])
def test_a_refused_deep_tree_leaves_nothing(work: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str], levels: int, via: str) -> None:
    """The deep file is written (a tar is read once) before the link after it refuses the archive."""
    data = tgz_with(TEntry("m/" + "d/" * levels + "f", b"deep"), TEntry("m/l", type=tarfile.SYMTYPE, linkname="/"))
    refused_and_clean(*cli(monkeypatch, capsys, via, data, "unpack", "-d", "out", name="h.tar.gz")[::2], work,
                      "link-entry")


@pytest.mark.parametrize("levels", [1100, 2000])
def test_deep_folders_verify_and_unpack(work: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str], levels: int) -> None:
    deep_folder(work.parent / "model", levels)
    status, out, err = run_main(monkeypatch, capsys, "verify", str(work.parent / "model"))
    assert status == 0 and "ok (0 errors" in out, err[-2000:]
    status, _, err = run_main(monkeypatch, capsys, "unpack", str(work.parent / "model"), "-d", "out")
    assert status == 0, err[-2000:]
    assert depth_of(work / "out") == (levels, b"deep")


def test_remove_tree_never_follows_links(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("precious")
    deep_folder(tmp_path / "tree", 1100)
    (tmp_path / "tree" / "to-folder").symlink_to(outside)
    (tmp_path / "tree" / "to-file").symlink_to(outside / "keep")
    try:
        markit.read.tree.remove_tree(str(tmp_path / "tree"))
        assert sorted(os.listdir(tmp_path)) == ["outside"] and (outside / "keep").read_text() == "precious"
    finally:
        subprocess.run(["rm", "-rf", str(tmp_path / "tree")], check=False)


# --- 8: control characters ---------------------------------------------------------------------------------------


CONTROLS = {"vertical-tab": "\x0b", "form-feed": "\x0c", "next-line": "\x85", "line-separator": "\u2028"}
ODD_NAME = "a\x0bb\u2028c\x85d.txt"


def record_with(digest: str | None = None, size: str | None = None) -> bytes:
    files = sound_files()
    real = hashlib.sha256(files["weights.bin"]).hexdigest()
    rows = record_bytes(files).decode()
    return rows.replace(f"weights.bin,sha256={real},{len(files['weights.bin'])}",
                        f"weights.bin,sha256={digest or real},{size or len(files['weights.bin'])}").encode()


def odd_zip(record: bytes) -> bytes:
    """A model whose RECORD lies, and a name with control characters, twice (a duplicate quotes it)."""
    entries = [ZEntry(n, d) for n, d in sound_files().items()]
    return build_zip([*entries, ZEntry(ODD_NAME, b"x"), ZEntry("./" + ODD_NAME, b"y"),
                      ZEntry("MAR-INF/RECORD", record)])


def assert_escaped(text: str) -> None:
    assert not any(c in text for c in (*CONTROLS.values(), "\x1b")), repr(text[-500:])


@pytest.mark.parametrize("case", [*sorted(CONTROLS), "superscript-size"])
@pytest.mark.parametrize("via", VIA)
def test_record_fields_are_strict_and_every_value_is_escaped(work: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str], case: str,
                                                             via: str) -> None:
    real = hashlib.sha256(sound_files()["weights.bin"]).hexdigest()
    record = record_with(size="²") if case not in CONTROLS else record_with(digest=CONTROLS[case] + real[:63])
    data = odd_zip(record)
    status, out, err = cli(monkeypatch, capsys, via, data, "verify")
    assert status == 1 and "error corrupt: MAR-INF/RECORD: line" in err and "internal error" not in err, err
    assert "error duplicate-entry" in err and repr(ODD_NAME) in err
    assert_escaped(out + err)
    for args in (["inspect"], ["inspect", "--json"], ["verify", "--json"]):
        status, out, err = cli(monkeypatch, capsys, via, data, *args)
        assert "internal error" not in err
        assert_escaped(out + err)
    refused_and_clean(*cli(monkeypatch, capsys, via, data, "unpack", "-d", "out")[::2], work, "corrupt")


# --- 9: the ratio default and the free space ---------------------------------------------------------------------


ZEROS = 8 << 20  # deflates ~1,000 times: under the former default of 1,100, over the new 100


def zeros_archive(fmt: str) -> bytes:
    if fmt == "zip":
        return build_zip([*(ZEntry(n, d) for n, d in sound_files().items()), ZEntry("zeros.bin", bytes(ZEROS))])
    return tgz_of({**sound_files(), "zeros.bin": bytes(ZEROS)})


@pytest.mark.parametrize("fmt", ["zip", "tgz"])
@pytest.mark.parametrize("via", VIA)
def test_the_ratio_default_is_100(work: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                  fmt: str, via: str) -> None:
    assert Limits().max_ratio == 100
    data = zeros_archive(fmt)
    name = "h.mar" if fmt == "zip" else "h.tar.gz"
    status, _, err = cli(monkeypatch, capsys, via, data, "verify", name=name)
    assert status == 1 and "error bomb" in err and " 100 " in err and "--max-ratio" in err, err
    assert cli(monkeypatch, capsys, via, data, "verify", "--max-ratio", "1100", name=name)[0] == 0
    written = count_writes(monkeypatch)
    refused_and_clean(*cli(monkeypatch, capsys, via, data, "unpack", "-d", "out", name=name)[::2], work, "bomb")
    assert sum(written) < ZEROS // 4  # the zeros were never written out, even from a pipe


def count_writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the writes ``unpack`` makes from now on."""
    written: list[int] = []
    real_write = os.write

    def counted(fd: int, data: bytes) -> int:
        written.append(len(data))
        return real_write(fd, data)

    monkeypatch.setattr("markit.read.tree.os.write", counted)
    return written


def big_archive(fmt: str, size: int) -> tuple[bytes, int]:
    """A model with a *size*-byte file of random bytes (no ratio limit applies), and its files' total size."""
    files = {**sound_files(), "big.bin": random.Random(size).randbytes(size)}
    total = sum(len(d) for d in files.values())
    return (build_zip([ZEntry(n, d) for n, d in files.items()]) if fmt == "zip" else tgz_of(files)), total


@pytest.mark.parametrize("fmt", ["zip", "tgz"])
@pytest.mark.parametrize("via", VIA)
def test_files_that_do_not_fit_are_refused(work: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str], fmt: str, via: str) -> None:
    data, total = big_archive(fmt, 64 << 10)
    free = types.SimpleNamespace(f_bavail=4, f_frsize=4096, f_blocks=1000)  # 16 KiB free: a stand-in for statvfs
    monkeypatch.setattr("markit.read.tree.os.statvfs", lambda path: free)
    written = count_writes(monkeypatch)
    status, _, err = cli(monkeypatch, capsys, via, data, "unpack", "-d", "out", name=f"h.{fmt}")
    refused_and_clean(status, err, work, "bomb")
    assert f"declare {total:,} bytes, more than the 16,384 bytes free" in err
    if fmt == "zip" and via == "file":
        assert written == []  # refused before anything was written
    assert sum(written) < 16 << 10  # a stream stops writing at the file that does not fit


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs: a real small disk. Needs root."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                                           check=False, capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs (needs root)")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


@pytest.mark.parametrize(("fmt", "via"), [("zip", "file"), ("tgz", "stdin")])
def test_a_real_small_disk_refuses_before_it_fills(work: Path, tiny_disk: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str], fmt: str, via: str) -> None:
    data, total = big_archive(fmt, 2 << 20)
    status, _, err = cli(monkeypatch, capsys, via, data, "unpack", "-d", str(tiny_disk / "out"), name=f"h.{fmt}")
    refused_and_clean(status, err, work, "bomb")
    assert f"declare {total:,} bytes, more than the" in err and "no space left" not in err
    assert os.listdir(tiny_disk) == []
