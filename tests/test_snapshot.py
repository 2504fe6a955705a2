"""The scanner on real trees: sorted depth-first order, real paths (links resolved, nothing else), loops and
dangling links named, deep trees without recursion."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from markit.errors import InputError
from markit.model.names import excluded_name
from markit.write.snapshot import Input, Skipped, SourceFile, scan_input


def _reference(folder: str, prefix: str, ancestors: set[tuple[int, int]], files: list[SourceFile],
               skipped: list[Skipped]) -> None:
    """The walk as first written: recursive, listdir sorted, a stat and a realpath for every entry (the oracle)."""
    for entry in sorted(os.listdir(folder)):
        path = os.path.join(folder, entry)
        name = prefix + entry
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            reason = excluded_name(entry)
            if reason is not None:
                skipped.append(Skipped(name, os.path.abspath(path), f"folder: {reason}"))
                continue
            _reference(path, name + "/", ancestors | {(st.st_dev, st.st_ino)}, files, skipped)
        elif stat.S_ISREG(st.st_mode):
            files.append(SourceFile(name, os.path.realpath(path), st.st_size, stat.S_IMODE(st.st_mode), st.st_mtime))
        else:
            skipped.append(Skipped(name, os.path.abspath(path), "not a regular file or folder"))


def reference_scan(given: str) -> Input:
    st = os.stat(given)
    files: list[SourceFile] = []
    skipped: list[Skipped] = []
    _reference(given, "", {(st.st_dev, st.st_ino)}, files, skipped)
    return Input("--model-path", given, True, tuple(files), tuple(skipped))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A model folder with nested folders, links to files and folders (in and out of it), hidden and special entries."""
    blobs = tmp_path / "blobs"
    (blobs / "inner").mkdir(parents=True)
    (blobs / "weights").write_bytes(b"w" * 100)
    (blobs / "inner" / "x.json").write_text("{}")
    model = tmp_path / "real-model"
    for name in ["handler.py", "b/c/d.txt", "b/a.txt", "B/z.bin", ".git/config", "b/__pycache__/m.pyc", "é/ü.txt",
                 "a b/c,d.txt"]:
        (model / name).parent.mkdir(parents=True, exist_ok=True)
        (model / name).write_text(name)
    (model / "run.sh").write_text("#!/bin/sh\n")
    (model / "run.sh").chmod(0o755)
    (model / "model.bin").symlink_to(blobs / "weights")
    (model / "b" / "blobs").symlink_to("../../blobs")
    (model / "b" / "c" / "again.txt").symlink_to("../a.txt")
    os.mkfifo(model / "pipe")
    (tmp_path / "via-link").symlink_to(model)
    return tmp_path


@pytest.mark.parametrize("given", ["real-model", "real-model/", "via-link", "./via-link/"])
def test_the_same_records_as_a_stat_and_realpath_per_entry(tree: Path, given: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tree)
    found = scan_input("--model-path", given)
    assert found == reference_scan(given)
    paths = {f.name: f.path for f in found.files}
    assert paths["model.bin"] == str(tree / "blobs" / "weights")  # a link: resolved
    assert paths["b/blobs/inner/x.json"] == str(tree / "blobs" / "inner" / "x.json")  # under a linked folder
    assert paths["b/c/d.txt"] == str(tree / "real-model" / "b" / "c" / "d.txt")  # the input itself resolved
    assert [f.name for f in found.files][:3] == ["B/z.bin", "a b/c,d.txt", "b/a.txt"]
    assert {s.name: s.reason for s in found.skipped} == {
        ".git": "folder: hidden", "b/__pycache__": "folder: Python byte-code cache __pycache__",
        "pipe": "not a regular file or folder"}


def test_only_symlinks_are_resolved(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    resolved: list[str] = []
    real = os.path.realpath

    def counting(path: str, *args: object, **kw: object) -> str:
        resolved.append(path)
        return real(path)

    monkeypatch.setattr(os.path, "realpath", counting)
    scan_input("--model-path", str(tree / "real-model"))
    model = tree / "real-model"
    assert sorted(resolved) == sorted([str(model), str(model / "model.bin"), str(model / "b" / "blobs"),
                                       str(model / "b" / "c" / "again.txt")])


def test_a_tree_deeper_than_the_recursion_limit(tmp_path: Path) -> None:
    depth = sys.getrecursionlimit() + 50
    top = str(tmp_path / "m")
    try:
        deep = top
        for _ in range(depth + 1):  # pathlib's and os.makedirs's mkdir recurse
            os.mkdir(deep)
            deep += "/d"
        with open(deep.removesuffix("/d") + "/leaf.txt", "w") as f:
            f.write("x")
        found = scan_input("--model-path", top)
        assert [f.name for f in found.files] == ["/".join(["d"] * depth) + "/leaf.txt"]
    finally:
        _remove_chain(top)


def _remove_chain(top: str) -> None:
    """Remove a chain of folders named d from the bottom up (shutil.rmtree and pytest's clean-up would recurse)."""
    deep = top
    while os.path.isdir(deep + "/d"):
        deep += "/d"
    for leaf in os.listdir(deep) if os.path.isdir(deep) else ():
        os.unlink(os.path.join(deep, leaf))
    while len(deep) >= len(top) and os.path.isdir(deep):
        os.rmdir(deep)
        deep = os.path.dirname(deep)


def test_a_loop_is_an_error_naming_the_link(tmp_path: Path) -> None:
    (tmp_path / "m" / "a").mkdir(parents=True)
    (tmp_path / "m" / "a" / "up").symlink_to("..")
    with pytest.raises(InputError, match=r"m/a/up: symlink loop \(it leads back to a folder above it\)$"):
        scan_input("--model-path", str(tmp_path / "m"))


def test_the_same_folder_twice_side_by_side_is_no_loop(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "x.txt").write_text("x")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "one").symlink_to(tmp_path / "shared")
    (tmp_path / "m" / "two").symlink_to(tmp_path / "shared")
    found = scan_input("--model-path", str(tmp_path / "m"))
    assert [(f.name, f.path) for f in found.files] == [("one/x.txt", str(tmp_path / "shared" / "x.txt")),
                                                       ("two/x.txt", str(tmp_path / "shared" / "x.txt"))]


def test_a_dangling_link_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "m" / "sub").mkdir(parents=True)
    (tmp_path / "m" / "sub" / "gone.bin").symlink_to(tmp_path / "nowhere")
    with pytest.raises(InputError, match=rf"m/sub/gone.bin: dangling symlink to {tmp_path}/nowhere$"):
        scan_input("--model-path", str(tmp_path / "m"))
