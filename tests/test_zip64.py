"""Zip64: more than 65,535 entries, and an entry over 4 GiB, to a file and through a pipe.

Each archive is read by ``zipfile`` (central directory), ``unzip -t`` and the Java oracle
(local headers, as TorchServe reads them). The big entry is a sparse file, so reading it
costs no disk; the archive written to a file does take 4 GiB of disk for a moment.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.java import java_command, read_with_zipinputstream

BIG = (4 << 30) + (1 << 20) + 7  # over 4 GiB, and not a multiple of any block size
MARKIT = [sys.executable, "-m", "markit", "create", "--handler", "handler:handle", "-q"]


def sparse_sha256(size: int) -> str:
    h = hashlib.sha256()
    block = bytes(1 << 20)
    for _ in range(size >> 20):
        h.update(block)
    h.update(bytes(size & ((1 << 20) - 1)))
    return h.hexdigest()


@pytest.fixture(scope="module")
def big_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    model = tmp_path_factory.mktemp("big") / "model"
    model.mkdir()
    (model / "handler.py").write_text("def handle(data, context):\n    return data\n")
    with open(model / "weights.bin", "wb") as f:
        f.truncate(BIG)
    yield model
    shutil.rmtree(model.parent, ignore_errors=True)


@pytest.fixture(autouse=True)
def _outputs_removed(tmp_path: Path) -> Iterator[None]:
    """Each test's archives (4 GiB) and folders (70,000 files) go when it ends: pytest keeps three runs."""
    yield
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_more_than_65535_entries(tmp_path: Path) -> None:
    model = tmp_path / "many"
    model.mkdir()
    (model / "handler.py").write_text("def handle(d, c):\n    return d\n")
    for i in range(70_000):
        sub = model / f"d{i // 1000:03d}"
        if i % 1000 == 0:
            sub.mkdir()
        (sub / f"f{i}.txt").write_bytes(b"%d" % i)
    done = subprocess.run([*MARKIT, "--model-name", "many", "--model-path", str(model), "--export-path", str(tmp_path)],
                          capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    mar = tmp_path / "many.mar"
    with zipfile.ZipFile(mar) as z:
        infos = z.infolist()
        assert len(infos) == 70_003  # files, handler, manifest, record
        assert z.read("d069/f69999.txt") == b"69999"
    assert subprocess.run(["unzip", "-tq", str(mar)], capture_output=True, check=False).returncode == 0
    assert len(read_with_zipinputstream(mar)) == 70_003


def test_entry_over_4_gib_to_a_file(big_model: Path, tmp_path: Path) -> None:
    if shutil.disk_usage(tmp_path).free < 12 << 30:
        pytest.skip("needs 12 GiB of free disk")
    done = subprocess.run([*MARKIT, "--model-name", "big", "--model-path", str(big_model), "--export-path", str(tmp_path)],
                          capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    mar = tmp_path / "big.mar"
    with zipfile.ZipFile(mar) as z:
        info = z.getinfo("weights.bin")
        assert (info.file_size, info.compress_type, info.flag_bits & 0x08) == (BIG, zipfile.ZIP_STORED, 0)
    assert subprocess.run(["unzip", "-tq", str(mar)], capture_output=True, check=False).returncode == 0
    by_name = {e.name: e for e in read_with_zipinputstream(mar)}
    assert by_name["weights.bin"].size == BIG and by_name["weights.bin"].sha256 == sparse_sha256(BIG)
    record = zipfile.ZipFile(mar).read("MAR-INF/RECORD").decode()
    assert f"weights.bin,sha256={sparse_sha256(BIG)},{BIG}" in record


def test_entry_over_4_gib_through_a_pipe_reads_in_java(big_model: Path) -> None:
    """The stream goes straight from markit into Java's ZipInputStream: no disk."""
    java = java_command()
    markit = subprocess.Popen([*MARKIT, "--model-name", "big", "--model-path", str(big_model), "-o", "-"],
                              stdout=subprocess.PIPE)
    checked = subprocess.run([*java, "-"], stdin=markit.stdout, capture_output=True, text=True, timeout=900, check=False)
    assert markit.wait(timeout=60) == 0
    assert checked.returncode == 0, checked.stderr
    rows = {line.split("\t")[0]: line.split("\t") for line in checked.stdout.splitlines()}
    assert int(rows["weights.bin"][1]) == BIG and rows["weights.bin"][3] == sparse_sha256(BIG)
    assert set(rows) == {"MAR-INF/MANIFEST.json", "handler.py", "weights.bin", "MAR-INF/RECORD"}


def test_entry_over_4_gib_through_a_pipe_reads_in_python(big_model: Path, tmp_path: Path) -> None:
    if shutil.disk_usage(tmp_path).free < 12 << 30:
        pytest.skip("needs 12 GiB of free disk")
    out = tmp_path / "piped.mar"
    cmd = " ".join([*MARKIT, "--model-name", "big", "--model-path", str(big_model), "-o", "-"]) + f" | cat > {out}"
    assert subprocess.run(["bash", "-o", "pipefail", "-c", cmd], check=False).returncode == 0
    with zipfile.ZipFile(out) as z:
        info = z.getinfo("weights.bin")
        assert info.file_size == BIG and info.compress_type == zipfile.ZIP_DEFLATED
        h = hashlib.sha256()
        with z.open(info) as f:  # inflates the stored blocks and checks the CRC at the end
            while chunk := f.read(1 << 20):
                h.update(chunk)
        assert h.hexdigest() == sparse_sha256(BIG)
    assert subprocess.run(["unzip", "-tq", str(out)], capture_output=True, check=False).returncode == 0
    os.unlink(out)
