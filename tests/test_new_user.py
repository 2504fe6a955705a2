"""What a new user met (issue 9): odd file names, zip-store, the README's example, tiny files, --handler ""."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import markit
from tests.conftest import ROOT, run_markit
from tests.test_create import check_contents, zip_contents

FORMATS = ["default", "zip-store", "tgz", "no-archive"]


def write_bytes_name(folder: Path, name: bytes, data: bytes) -> None:
    """A file whose name is *name*, bytes as the file system holds them (not necessarily UTF-8)."""
    fd = os.open(os.path.join(os.fsencode(folder), name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def create(example: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[bytes]:
    return run_markit("create", "--model-name", "m", "--model-path", str(example), "--handler", "handler:handle",
                      "--export-path", str(out), *extra)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_name_that_is_not_utf8_is_refused_in_one_line(example: Path, tmp_path: Path, fmt: str) -> None:
    write_bytes_name(example, b"caf\xe9.txt", b"latte")
    out = tmp_path / "out"
    out.mkdir()
    done = create(example, out, "--archive-format", fmt)
    err = done.stderr.decode()
    assert done.returncode == 1, err
    assert err == (f"markit: {example}/caf\\xe9.txt: the file name is not valid UTF-8, which archive names must be"
                   " (TorchServe reads them as UTF-8); rename it, or leave it out with --exclude\n")
    assert os.listdir(out) == []


def test_a_name_that_is_not_utf8_can_be_left_out(example: Path, tmp_path: Path) -> None:
    write_bytes_name(example, b"caf\xe9.txt", b"latte")
    write_bytes_name(example, b".hidden-\xff", b"x")  # excluded anyway: shown escaped by --dry-run
    done = create(example, tmp_path, "--exclude", "caf*", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "  exclude  .hidden-\\xff  (hidden)" in done.stdout.decode("ascii")
    assert create(example, tmp_path, "--exclude", "caf*").returncode == 0
    names = zipfile.ZipFile(tmp_path / "m.mar").namelist()
    assert "handler.py" in names and not any(n.startswith(("caf", ".hidden")) for n in names)


def test_several_names_and_a_named_file_are_listed(example: Path, tmp_path: Path) -> None:
    write_bytes_name(example, b"a\xe9", b"1")
    write_bytes_name(example, b"b\xff", b"2")
    err = create(example, tmp_path).stderr.decode()
    assert f"{example}/a\\xe9, {example}/b\\xff: 2 file names are not valid UTF-8" in err
    lone = tmp_path / "lone"
    lone.mkdir()
    write_bytes_name(lone, b"w\xe9.pt", b"w")
    done = run_markit("create", "--model-name", "m", "--serialized-file", os.fsdecode(os.fsencode(lone) + b"/w\xe9.pt"),
                      "--handler", "image_classifier", "--export-path", str(tmp_path))
    assert done.returncode == 1 and done.stderr.decode().endswith("is not valid UTF-8, which archive names must be"
                                                                   " (TorchServe reads them as UTF-8); rename it\n")


def test_zip_store_stores_every_entry_manifest_and_record_too(example: Path, tmp_path: Path) -> None:
    assert create(example, tmp_path, "--archive-format", "zip-store").returncode == 0
    with zipfile.ZipFile(tmp_path / "m.mar") as z:
        assert {(i.filename, i.compress_type) for i in z.infolist()} == {
            (i.filename, zipfile.ZIP_STORED) for i in z.infolist()}
        assert {"MAR-INF/MANIFEST.json", "MAR-INF/RECORD"} <= set(z.namelist())


def test_compression_store_stores_the_generated_files_too(example: Path, tmp_path: Path) -> None:
    assert create(example, tmp_path, "--compression", "store").returncode == 0
    with zipfile.ZipFile(tmp_path / "m.mar") as z:
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_STORED}


def test_a_missing_export_folder_is_refused_as_torch_model_archiver_does(example: Path, tmp_path: Path) -> None:
    done = create(example, tmp_path / "model_store")
    assert done.returncode == 1
    assert done.stderr.decode() == (f"markit: --export-path {tmp_path}/model_store: the export folder does not"
                                    " exist; create it first (torch-model-archiver does not create it either)\n")
    assert os.listdir(tmp_path) == ["squeezenet-like"]


def test_an_export_path_that_is_a_file_says_so(example: Path, tmp_path: Path) -> None:
    (tmp_path / "store").write_bytes(b"a file")
    done = create(example, tmp_path / "store")
    assert done.returncode == 1
    assert done.stderr.decode() == (f"markit: --export-path {tmp_path}/store: is a file, expected a folder to write"
                                    " the archive into\n")
    assert (tmp_path / "store").read_bytes() == b"a file"
    done = run_markit("create", "--model-name", "m", "--model-path", str(example), "--handler", "handler:handle",
                      "-o", str(tmp_path / "store" / "m.mar"))
    assert done.returncode == 1 and b"store: is a file, expected a folder" in done.stderr


def test_the_readme_torch_model_archiver_example_runs_as_written(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"# torch-model-archiver style.*?\n\n", readme, re.DOTALL)
    assert block is not None
    for name in ["densenet.pth", "model.py", "index_to_name.json", "requirements.txt", "model-config.yaml",
                 "assets/labels.txt"]:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("{}\n")
    script = block.group(0).replace("markit create", f"{sys.executable} -m markit create")
    done = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    assert zipfile.ZipFile(tmp_path / "model_store" / "densenet.mar").testzip() is None


def incompressible(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def test_auto_stores_what_deflate_does_not_shrink(example: Path, tmp_path: Path) -> None:
    (example / "two.txt").write_bytes(b"ab")  # deflate: 9 bytes
    (example / "empty.json").write_bytes(b"")
    (example / "noise.cfg").write_bytes(incompressible(300_000, 1))  # one chunk, a text suffix
    (example / "text.json").write_bytes(b'{"token": 1}\n' * 300_000)  # 3.7 MiB that deflates well
    # its first MiB deflates ~550 bytes smaller, the next 8 MiB ~680 larger (stored blocks): written again, stored
    (example / "tail.json").write_bytes(incompressible((1 << 20) - 1000, 2) + bytes(1000) + incompressible(8 << 20, 4))
    (example / "head.json").write_bytes(b"a" * (1 << 20) + incompressible(3 << 20, 5))  # the first MiB pays for all
    (example / "random.json").write_bytes(incompressible(5 << 20, 3))  # decided from its first MiB
    seen: list[tuple[int, int]] = []
    made = markit.create(model_name="squeezenet-like", handler="handler:handle", model_path=str(example),
                         export_path=str(tmp_path), progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (made.plan.total_size, made.plan.total_size)  # a second read is not counted twice
    mar = tmp_path / "squeezenet-like.mar"
    check_contents(example, zip_contents(mar))
    with zipfile.ZipFile(mar) as z:
        infos = {i.filename: i for i in z.infolist()}
    for info in infos.values():
        assert info.compress_size < info.file_size if info.compress_type == zipfile.ZIP_DEFLATED else \
            info.compress_size == info.file_size, info.filename
    methods = {name: info.compress_type for name, info in infos.items()}
    assert methods["two.txt"] == methods["empty.json"] == methods["noise.cfg"] == zipfile.ZIP_STORED
    assert methods["tail.json"] == methods["random.json"] == zipfile.ZIP_STORED
    assert methods["text.json"] == methods["head.json"] == methods["MAR-INF/RECORD"] == zipfile.ZIP_DEFLATED
    assert subprocess.run(["unzip", "-tq", str(mar)], capture_output=True, check=False).returncode == 0


def test_compression_deflate_still_deflates_everything(example: Path, tmp_path: Path) -> None:
    (example / "two.txt").write_bytes(b"ab")
    assert create(example, tmp_path, "--compression", "deflate").returncode == 0
    with zipfile.ZipFile(tmp_path / "m.mar") as z:
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_DEFLATED}


def test_an_empty_handler_says_it_is_empty(example: Path, tmp_path: Path) -> None:
    done = run_markit("create", "--model-name", "m", "--model-path", str(example), "--handler", "",
                      "--export-path", str(tmp_path))
    assert done.returncode == 1
    assert done.stderr.decode() == ("markit: --handler is empty: give module[:function], a .py file or a built-in"
                                    " handler name\n")
