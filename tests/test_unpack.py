"""``markit unpack``: all or nothing, never outside DEST, never a link, DEST rules."""

from __future__ import annotations

import errno
import os
import stat
import tarfile
from pathlib import Path

import pytest

import markit.read.unpack
from markit.read.unpack import default_dest
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
    zip_of,
)


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def good_files() -> dict[str, bytes]:
    files = sound_files(config__labels=b"a\nb\n")
    return {**files, "MAR-INF/RECORD": record_bytes(files)}


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder as the current folder (default DESTs land here)."""
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


@pytest.mark.parametrize("fmt", ["zip", "tgz", "tar", "zip-descriptors", "folder"])
def test_unpack_gives_back_the_files(work: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    files = good_files()
    if fmt == "folder":
        src = folder_of(tmp_path / "src", files)
    else:
        src = tmp_path / {"tgz": "m.tar.gz", "tar": "m.tar"}.get(fmt, "m.mar")
        src.write_bytes({"zip": lambda: zip_of(files), "tgz": lambda: tgz_of(files),
                         "tar": lambda: tgz_of(files, gz=False),
                         "zip-descriptors": lambda: build_zip([ZEntry(n, d, descriptor=True)
                                                               for n, d in files.items()])}[fmt]())
    status, _, err = run_main(monkeypatch, capsys, "unpack", str(src), "-d", "out")
    assert status == 0, err
    assert tree(work / "out") == files and os.listdir(work) == ["out"]


@pytest.mark.parametrize("fmt", ["zip", "tgz"])
def test_stdin_default_dest_is_the_model_name(work: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    data = zip_of(good_files()) if fmt == "zip" else tgz_of(good_files())
    status, _, err = run_main(monkeypatch, capsys, "unpack", "-", stdin=data)
    assert status == 0, err
    assert tree(work / "m") == good_files()


@pytest.mark.parametrize(
    ("path", "dest"),
    [("a/m.mar", "m"), ("w/pipeline.war", "pipeline"), ("m.tar.gz", "m"), ("M.TGZ", "M"), ("x.tar", "x"), ("folder/", "folder.unpacked"),
     ("plain", "plain.unpacked"),
     (".mar", ".mar.unpacked"), ("-", None)],
)
def test_default_dest(path: str, dest: str | None) -> None:
    assert default_dest(path) == dest


HOSTILE = {
    "unsafe": lambda: zip_of({**good_files(), "../../escaped.txt": b"x", "/tmp/abs.txt": b"y"}),
    "link": lambda: build_zip([ZEntry(n, d) for n, d in good_files().items()]
                              + [ZEntry("link", b"../../outside", mode=0o120777)]),
    "tar-link": lambda: build_tar([TEntry("m/" + n, d) for n, d in good_files().items()]
                                  + [TEntry("m/l", type=tarfile.SYMTYPE, linkname="/etc"),
                                     TEntry("m/l/passwd", b"owned")]),
    "crc": lambda: build_zip([ZEntry(n, d) for n, d in good_files().items()] + [ZEntry("x", b"data", crc=5)]),
    "digest": lambda: zip_of({**sound_files(), "MAR-INF/RECORD": record_bytes(sound_files(),
                                                                                lie={"weights.bin": "00" * 32})}),
    "duplicate": lambda: zip_of({**good_files(), "./handler.py": b"evil"}),
    "file-and-folder": lambda: build_zip([ZEntry(n, d) for n, d in good_files().items()]
                                         + [ZEntry("a", b"file"), ZEntry("a/b", b"under a file")]),
    "no-manifest": lambda: zip_of({"handler.py": b"x"}),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
@pytest.mark.parametrize("via", ["file", "stdin"])
def test_refused_archives_write_nothing(work: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str], case: str, via: str) -> None:
    data = HOSTILE[case]()
    (tmp_path / "h.mar").write_bytes(data)
    before = sorted(os.listdir(tmp_path))
    args = ["-"] if via == "stdin" else [str(tmp_path / "h.mar")]
    status, _, err = run_main(monkeypatch, capsys, "unpack", *args, "-d", "out", stdin=data if via == "stdin" else None)
    assert status == 1 and "refused to unpack" in err and "Traceback" not in err
    assert os.listdir(work) == [] and sorted(os.listdir(tmp_path)) == before
    assert not Path("/tmp/abs.txt").exists() or Path("/tmp/abs.txt").read_bytes() != b"y"


def test_existing_dest(work: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                       capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "m.mar").write_bytes(zip_of(good_files()))
    (work / "out").mkdir()
    assert run_main(monkeypatch, capsys, "unpack", str(tmp_path / "m.mar"), "-d", "out")[0] == 0  # empty: fine
    (work / "out" / "stale.txt").write_text("old")
    status, _, err = run_main(monkeypatch, capsys, "unpack", str(tmp_path / "m.mar"), "-d", "out")
    assert status == 1 and "--force" in err and (work / "out" / "stale.txt").read_text() == "old"
    (work / "file").write_text("a file")
    assert run_main(monkeypatch, capsys, "unpack", str(tmp_path / "m.mar"), "-d", "file")[0] == 1
    assert (work / "file").read_text() == "a file"
    assert run_main(monkeypatch, capsys, "unpack", str(tmp_path / "m.mar"), "-d", "out", "--force")[0] == 0
    assert tree(work / "out") == good_files() and sorted(os.listdir(work)) == ["file", "out"]


def test_force_never_follows_links_in_dest(work: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "handler.py").write_text("precious")
    (work / "out").mkdir()
    (work / "out" / "handler.py").symlink_to(outside / "handler.py")
    (work / "out" / "config").symlink_to(outside)
    (work / "link").symlink_to(outside)
    (tmp_path / "m.mar").write_bytes(zip_of(good_files()))
    assert run_main(monkeypatch, capsys, "unpack", str(tmp_path / "m.mar"), "-d", "out", "--force")[0] == 0
    assert run_main(monkeypatch, capsys, "unpack", str(tmp_path / "m.mar"), "-d", "link", "--force")[0] == 0
    assert os.listdir(outside) == ["handler.py"] and (outside / "handler.py").read_text() == "precious"
    assert not (work / "link").is_symlink() and tree(work / "link") == good_files()
    assert not (work / "out" / "handler.py").is_symlink()


def test_force_will_not_remove_the_current_folder_or_the_archive(work: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    (work / "m.mar").write_bytes(zip_of(good_files()))
    status, _, err = run_main(monkeypatch, capsys, "unpack", "m.mar", "-d", ".", "--force")
    assert status == 1 and "current folder" in err and os.listdir(work) == ["m.mar"]
    status, _, err = run_main(monkeypatch, capsys, "unpack", "m.mar", "-d", "..", "--force")
    assert status == 1 and os.listdir(work) == ["m.mar"]


def test_dest_in_a_missing_folder_is_a_usage_error(work: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    (work / "m.mar").write_bytes(zip_of(good_files()))
    status, _, err = run_main(monkeypatch, capsys, "unpack", "m.mar", "-d", "no/such/dest")
    assert status == 2 and "does not exist" in err


def test_executable_bits_survive_even_from_a_pipe(work: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    entries = [ZEntry(n, d) for n, d in sound_files().items()] + [ZEntry("run.sh", b"#!/bin/sh\n", mode=0o100755)]
    for args, stdin in ((["unpack", "-", "-d", "a"], build_zip(entries)), (["unpack", "-", "-d", "b"],
                                                                          build_zip(entries))):
        assert run_main(monkeypatch, capsys, *args, stdin=stdin)[0] == 0
    assert stat.S_IMODE((work / "a" / "run.sh").stat().st_mode) & 0o111
    assert not stat.S_IMODE((work / "a" / "handler.py").stat().st_mode) & 0o111


@pytest.mark.parametrize("failure", ["interrupt", "disk-full"])
def test_a_failure_while_writing_leaves_nothing(work: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str], failure: str) -> None:
    (tmp_path / "m.mar").write_bytes(zip_of(good_files()))
    calls = {"n": 0}
    real = os.write

    def failing(fd: int, data: bytes) -> int:
        calls["n"] += 1
        if calls["n"] > 2:
            if failure == "interrupt":
                raise KeyboardInterrupt
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)

    monkeypatch.setattr(markit.read.unpack.os, "write", failing)
    status, _, err = run_main(monkeypatch, capsys, "unpack", str(tmp_path / "m.mar"), "-d", "out")
    assert status == (130 if failure == "interrupt" else 1)
    assert ("no space left" in err) if failure == "disk-full" else ("interrupted" in err)
    assert os.listdir(work) == []


def test_a_tgz_without_one_top_folder_unpacks_as_named(work: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "m.tar.gz").write_bytes(tgz_of(good_files(), root=None))
    status, _, err = run_main(monkeypatch, capsys, "unpack", str(tmp_path / "m.tar.gz"))
    assert status == 0 and "torchserve-incompatible" in err
    assert tree(work / "m") == good_files()


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_each_folder_is_opened_once_and_every_descriptor_closed(tmp_path: Path) -> None:
    from markit.formats.base import Member
    from markit.model.limits import Limits
    from markit.read.tree import TempTree

    before = _open_fds()
    temp = TempTree(str(tmp_path), "dest", "x.mar", limits=Limits())
    first = temp.open(Member("a/1", "file", 1, mode=0o100644))
    second = temp.open(Member("b/c/2", "file", 1, mode=0o100755))  # the tree moves on while a/1 is open
    assert first is not None and second is not None
    first.write(b"x")
    first.close(False)  # removed, through the folder it was made in
    second.write(memoryview(b"yz")[:1])
    second.close(True)
    for i in range(50):  # a sorted walk: one descriptor per folder at a time, whatever the count of files
        out = temp.open(Member(f"b/c/{i}.bin", "file", 1, mode=0o100644))
        assert out is not None
        out.write(b"z")
        out.close(True)
        assert _open_fds() <= before + 3
    temp.commit(str(tmp_path / "dest"), None, force=False)
    assert _open_fds() == before
    assert tree(tmp_path / "dest") == {"b/c/2": b"y", **{f"b/c/{i}.bin": b"z" for i in range(50)}}
    assert stat.S_IMODE((tmp_path / "dest" / "b" / "c" / "2").stat().st_mode) == 0o755
    assert (tmp_path / "dest" / "a").is_dir()


def test_an_unpack_of_many_small_files_writes_them_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    files = {f"d{i % 7}/f{i}.bin": os.urandom(i % 300) for i in range(400)}
    files["handler.py"] = b"def handle(d, c):\n    return d\n"
    files["MAR-INF/MANIFEST.json"] = sound_files()["MAR-INF/MANIFEST.json"]
    files = {**files, "MAR-INF/RECORD": record_bytes(files)}
    archive = tmp_path / "m.mar"
    archive.write_bytes(build_zip([ZEntry(n, d, method=0 if i % 2 else 8) for i, (n, d) in enumerate(sorted(
        files.items()))]))
    status, _, err = run_main(monkeypatch, capsys, "unpack", str(archive), "-d", str(tmp_path / "out"))
    assert status == 0, err
    assert tree(tmp_path / "out") == files
