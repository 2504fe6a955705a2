"""``markit create`` as a user runs it: archives read back by tools markit did not write."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.conftest import run_markit

HANDLER = ("--handler", "handler:handle")


def create(example: Path, out: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return run_markit("create", "--model-name", "squeezenet-like", "--model-path", str(example), *HANDLER,
                      "--export-path", str(out), *extra, env=env)


def source_files(example: Path) -> dict[str, bytes]:
    return {p.relative_to(example).as_posix(): p.read_bytes() for p in sorted(example.rglob("*")) if p.is_file()}


def record_of(read: dict[str, bytes]) -> dict[str, tuple[str, int]]:
    rows = [line.split(",") for line in read["MAR-INF/RECORD"].decode().splitlines()]
    return {name: (digest.removeprefix("sha256="), int(size)) for name, digest, size in rows if digest}


def zip_contents(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None
        return {info.filename: z.read(info) for info in z.infolist()}


def check_contents(example: Path, read: dict[str, bytes]) -> None:
    files = source_files(example)
    assert {k: v for k, v in read.items() if not k.startswith("MAR-INF/")} == files
    record = record_of(read)
    assert set(record) == set(files) | {"MAR-INF/MANIFEST.json"}
    for name, (digest, size) in record.items():
        assert hashlib.sha256(read[name]).hexdigest() == digest and len(read[name]) == size
    manifest = json.loads(read["MAR-INF/MANIFEST.json"])
    assert manifest["model"] == {"modelName": "squeezenet-like", "handler": "handler:handle"}


def test_default_zip_reads_back_with_zipfile_and_unzip(example: Path, tmp_path: Path) -> None:
    done = create(example, tmp_path)
    assert done.returncode == 0, done.stderr
    mar = tmp_path / "squeezenet-like.mar"
    check_contents(example, zip_contents(mar))
    with zipfile.ZipFile(mar) as z:
        methods = {i.filename: i.compress_type for i in z.infolist()}
        assert all(not i.flag_bits & 0x08 for i in z.infolist())  # no data descriptors on a file
        assert {i.external_attr >> 16 for i in z.infolist()} == {0o100644}
    assert methods["squeezenet_like.bin"] == zipfile.ZIP_STORED and methods["handler.py"] == zipfile.ZIP_DEFLATED
    assert "No errors detected" in subprocess.run(["unzip", "-t", str(mar)], capture_output=True, text=True, check=False).stdout
    assert sorted(os.listdir(tmp_path)) == ["squeezenet-like", "squeezenet-like.mar"]  # no temporary file left


def test_zip_store_stores_everything(example: Path, tmp_path: Path) -> None:
    assert create(example, tmp_path, "--archive-format", "zip-store").returncode == 0
    with zipfile.ZipFile(tmp_path / "squeezenet-like.mar") as z:
        assert {i.compress_type for i in z.infolist() if not i.filename.startswith("MAR-INF")} == {zipfile.ZIP_STORED}
    check_contents(example, zip_contents(tmp_path / "squeezenet-like.mar"))


def test_stdout_zip_through_a_pipe(example: Path, tmp_path: Path) -> None:
    cmd = f"{shutil.which('python') or 'python'} -m markit create --model-name squeezenet-like --model-path {example}" \
          f" --handler handler:handle -o - | cat > {tmp_path / 'piped.mar'}"
    done = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    check_contents(example, zip_contents(tmp_path / "piped.mar"))
    with zipfile.ZipFile(tmp_path / "piped.mar") as z:
        # a pipe cannot be sought: every entry is DEFLATE with a descriptor, weights as stored blocks
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_DEFLATED}
        assert all(i.flag_bits & 0x08 for i in z.infolist())
        weights = z.getinfo("squeezenet_like.bin")
        assert weights.compress_size == weights.file_size + 5 + 5


def test_tgz_has_one_top_folder_and_fixed_owner(example: Path, tmp_path: Path) -> None:
    assert create(example, tmp_path, "--archive-format", "tgz").returncode == 0
    with tarfile.open(tmp_path / "squeezenet-like.tar.gz") as t:
        members = t.getmembers()
        assert {m.name.split("/")[0] for m in members} == {"squeezenet-like"}
        assert {(m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, "", "")}
        read = {m.name.split("/", 1)[1]: t.extractfile(m).read() for m in members if m.isfile()}  # type: ignore[union-attr]
    check_contents(example, read)


def test_no_archive_is_a_folder(example: Path, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    assert create(example, tmp_path / "out", "--archive-format", "no-archive").returncode == 0
    out = tmp_path / "out" / "squeezenet-like"
    assert out.is_dir()
    check_contents(example, {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()})


def test_torch_model_archiver_style_flags(example: Path, tmp_path: Path) -> None:
    e = example
    done = run_markit("create", "--model-name", "tma-style", "--version", "1.0", "--serialized-file", str(e / "squeezenet_like.bin"),
                      "--handler", str(e / "handler.py"), "--extra-files", f"{e / 'index_to_name.json'},{e / 'config'}",
                      "-r", str(e / "requirements.txt"), "-c", str(e / "model-config.yaml"), "--export-path", str(tmp_path))
    assert done.returncode == 0, done.stderr
    read = zip_contents(tmp_path / "tma-style.mar")
    assert sorted(read) == ["MAR-INF/MANIFEST.json", "MAR-INF/RECORD", "handler.py", "index_to_name.json",
                            "labels_extra.txt", "model-config.yaml", "requirements.txt", "squeezenet_like.bin"]
    assert json.loads(read["MAR-INF/MANIFEST.json"])["model"] == {
        "modelName": "tma-style", "serializedFile": "squeezenet_like.bin", "handler": "handler.py", "modelVersion": "1.0",
        "requirementsFile": "requirements.txt", "configFile": "model-config.yaml"}


def test_reproducible_with_source_date_epoch(example: Path, tmp_path: Path) -> None:
    env = {"SOURCE_DATE_EPOCH": "1700000000"}
    outputs = []
    for run, fmt in enumerate(["default", "default", "tgz", "tgz", "zip-store", "zip-store"]):
        out = tmp_path / f"out{run}"
        out.mkdir()
        if run % 2:  # the second build of each pair: other mtimes, modes, umask, time of day
            for p in example.rglob("*"):
                os.utime(p, (1_234_567_890 + run, 1_234_567_890 + run))
            (example / "handler.py").chmod(0o600)
        done = run_markit("create", "--model-name", "squeezenet-like", "--model-path", str(example), *HANDLER,
                          "--archive-format", fmt, "--export-path", str(out), env=env)
        assert done.returncode == 0, done.stderr
        outputs.append(next(out.iterdir()).read_bytes())
    assert outputs[0] == outputs[1] and outputs[2] == outputs[3] and outputs[4] == outputs[5]
    assert json.loads(zip_contents(tmp_path / "out0" / "squeezenet-like.mar")["MAR-INF/MANIFEST.json"])["createdOn"] \
        == "14/11/2023 22:13:20"


def test_exclusions_on_disk(example: Path, tmp_path: Path) -> None:
    for name in [".hidden", ".git/config", "__pycache__/h.cpython-311.pyc", "x.pyc", ".DS_Store", "__MACOSX/x",
                 "MANIFEST.json", "MAR-INF/MANIFEST.json", "sub/.env"]:
        (example / name).parent.mkdir(parents=True, exist_ok=True)
        (example / name).write_text("x")
    done = run_markit("create", "--model-name", "squeezenet-like", "--model-path", str(example), *HANDLER,
                      "--export-path", str(example), "--dry-run", "--json")
    plan = json.loads(done.stdout)
    assert sorted(x["name"] for x in plan["excluded"]) == sorted(
        [".hidden", ".git", "__pycache__", "x.pyc", ".DS_Store", "__MACOSX", "MANIFEST.json", "MAR-INF/MANIFEST.json", "sub/.env"])
    assert create(example, example).returncode == 0  # the output lands inside the model folder
    read = zip_contents(example / "squeezenet-like.mar")
    assert not any(n.endswith((".pyc", ".hidden", ".env", ".mar")) or "MACOSX" in n or ".git" in n for n in read)
    assert create(example, example, "-f").returncode == 0  # a second run does not archive the first archive
    assert "squeezenet-like.mar" not in zip_contents(example / "squeezenet-like.mar")


def test_symlinks_to_files_are_followed(example: Path, tmp_path: Path) -> None:
    blob = tmp_path / "blobs" / "abc123"
    blob.parent.mkdir()
    blob.write_bytes(b"weights" * 100)
    (example / "model.safetensors").symlink_to(blob)
    assert create(example, tmp_path).returncode == 0
    assert zip_contents(tmp_path / "squeezenet-like.mar")["model.safetensors"] == b"weights" * 100


def test_dry_run_writes_nothing_and_explains(example: Path, tmp_path: Path) -> None:
    (example / ".secret").write_text("x")
    done = create(example, tmp_path, "--dry-run")
    assert done.returncode == 0 and os.listdir(tmp_path) == ["squeezenet-like"]
    text = done.stdout.decode()
    assert "include  squeezenet_like.bin" in text and "exclude  .secret  (hidden)" in text and '"modelName"' in text


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--model-path", "{tmp}/nope"], 1, "--model-path {tmp}/nope: no such file or folder"),
        (["--handler", "{tmp}/missing_handler.py"], 1, "handler file {tmp}/missing_handler.py not found"),
        (["--model-name", "bad name"], 1, "model name 'bad name' is not valid"),
        (["--export-path", "{tmp}/no-such-dir"], 1, "the export folder does not exist"),
        (["--export-path", "/proc/self"], 1, "/proc/self"),
        (["--archive-format", "rar"], 2, "rar"),
        (["-o", "{tmp}/x.tar.gz", "--archive-format", "default"], 2, "a zip archive named .tar.gz is refused"),
        (["--unknown-flag"], 2, "--unknown-flag"),
    ],
)
def test_errors_are_one_line_and_leave_nothing(example: Path, tmp_path: Path, args: list[str], code: int, message: str) -> None:
    base = {"--model-name": "squeezenet-like", "--model-path": str(example), "--handler": "handler:handle",
            "--export-path": str(tmp_path)}
    filled = [a.replace("{tmp}", str(tmp_path)) for a in args]
    for flag in filled[::2]:
        base.pop(flag, None)
    if "-o" in filled:
        base.pop("--export-path")
    argv = [x for kv in base.items() for x in kv] + filled
    before = sorted(os.listdir(tmp_path))
    done = run_markit("create", *argv)
    err = done.stderr.decode()
    assert done.returncode == code, err
    assert message.replace("{tmp}", str(tmp_path)) in err
    assert "Traceback" not in err
    if code == 1:
        assert len(err.strip().splitlines()) == 1
    assert sorted(os.listdir(tmp_path)) == before


def test_existing_archive_is_kept_without_force(example: Path, tmp_path: Path) -> None:
    (tmp_path / "squeezenet-like.mar").write_bytes(b"keep me")
    done = create(example, tmp_path)
    assert done.returncode == 1 and b"already exists (use -f" in done.stderr
    assert (tmp_path / "squeezenet-like.mar").read_bytes() == b"keep me"
    assert create(example, tmp_path, "-f").returncode == 0
    assert zipfile.is_zipfile(tmp_path / "squeezenet-like.mar")


@pytest.mark.parametrize("target", ["missing", "loop"])
def test_dangling_symlinks_and_loops_are_errors(example: Path, tmp_path: Path, target: str) -> None:
    link = example / "sub" / "link"
    link.parent.mkdir()
    link.symlink_to(tmp_path / "missing" if target == "missing" else example)
    done = create(example, tmp_path)
    assert done.returncode == 1 and str(link).encode() in done.stderr
    assert (b"dangling symlink" if target == "missing" else b"symlink loop") in done.stderr
    assert os.listdir(tmp_path) == ["squeezenet-like"]


def test_stdout_closed_early_is_one_line(example: Path, tmp_path: Path) -> None:
    (example / "big.bin").write_bytes(os.urandom(8 << 20))
    cmd = f"python -m markit create --model-name m --model-path {example} --handler handler:handle -o - | head -c 10 >/dev/null"
    done = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, check=False)
    assert done.returncode == 1 and "pipe was closed" in done.stderr and "Traceback" not in done.stderr


def test_help_answers_the_questions() -> None:
    text = run_markit("create", "--help").stdout.decode()
    for needle in ["--model-path", "--serialized-file", "--extra-files", "--archive-format", "--compression", "-o", "--dry-run",
                   "SOURCE_DATE_EPOCH", "__pycache__"]:
        assert needle in text


@pytest.mark.parametrize("fmt", ["default", "zip-store", "tgz", "no-archive"])
def test_each_source_is_read_once_and_counted_once(example: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   fmt: str) -> None:
    """Small files are read whole, large ones streamed; either way one open per file, and the progress adds up to
    the input. The one exception: a large file deflate did not shrink is read again, to be stored."""
    import markit

    for i in range(300):
        (example / "many" / f"f{i:03d}.dat").parent.mkdir(exist_ok=True)
        (example / "many" / f"f{i:03d}.dat").write_bytes(os.urandom(i * 37))
    (example / "large.bin").write_bytes(os.urandom(3 << 20))
    (example / "exact.dat").write_bytes(os.urandom(1 << 20))
    # a text suffix whose first MiB deflates ~550 bytes smaller and the next 8 MiB ~680 larger: stored, so read again
    (example / "noise.txt").write_bytes(os.urandom((1 << 20) - 1000) + bytes(1000) + os.urandom(8 << 20))
    opened: list[str] = []
    real = os.open

    def counted(path: str, flags: int, *args: int, **kw: int) -> int:
        if flags == os.O_RDONLY:
            opened.append(str(path))
        return real(path, flags, *args, **kw)

    monkeypatch.setattr(os, "open", counted)
    seen: list[tuple[int, int]] = []
    made = markit.create(model_name="m", handler="handler:handle", model_path=str(example), archive_format=fmt,
                         export_path=str(tmp_path), progress=lambda done, total: seen.append((done, total)))
    sources = [e.source for e in made.plan.entries]
    again = [str(example / "noise.txt")] if fmt == "default" else []
    assert sorted(opened) == sorted(sources + again)
    assert seen[-1] == (made.plan.total_size, made.plan.total_size) and seen == sorted(seen)
