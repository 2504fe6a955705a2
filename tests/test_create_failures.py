"""Failures in the middle of writing: disk full, Ctrl-C. Nothing may be left behind."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import pytest

import markit.storage.sinks
from markit import cli


def run_main(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> int:
    monkeypatch.setattr(sys, "argv", ["markit", *argv])
    with pytest.raises(SystemExit) as caught:
        cli.main()
    return int(caught.value.code or 0)


@pytest.mark.parametrize("fmt", ["default", "tgz"])
def test_disk_full_leaves_nothing(example: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    (example / "weights.bin").write_bytes(os.urandom(3 << 20))  # written in several calls: the error comes mid-way
    real = os.writev
    calls = {"n": 0}

    def full(fd: int, buffers: list[memoryview]) -> int:
        calls["n"] += 1
        if calls["n"] > (2 if fmt == "default" else 0):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, buffers)

    monkeypatch.setattr(markit.storage.sinks.os, "writev", full)
    code = run_main(monkeypatch, ["create", "--model-name", "m", "--model-path", str(example), "--handler", "handler:handle",
                                  "--archive-format", fmt, "--export-path", str(tmp_path), "-q"])
    err = capsys.readouterr().err
    assert code == 1 and "no space left on the device" in err and len(err.strip().splitlines()) == 1
    assert os.listdir(tmp_path) == ["squeezenet-like"]


@pytest.mark.parametrize("reader", ["read_whole", "pump"])
def test_ctrl_c_leaves_nothing(example: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str], reader: str) -> None:
    """Interrupted in a small file's read (the first file) or in a large file's (after the small ones went out)."""
    import markit.write.create

    def interrupted(*args: object, **kw: object) -> object:
        raise KeyboardInterrupt

    (example / "weights.bin").write_bytes(os.urandom(2 << 20))  # over one chunk: streamed by pump
    monkeypatch.setattr(markit.write.create, reader, interrupted)
    code = run_main(monkeypatch, ["create", "--model-name", "m", "--model-path", str(example), "--handler", "handler:handle",
                                  "--export-path", str(tmp_path)])
    assert code == 130 and "interrupted" in capsys.readouterr().err
    assert os.listdir(tmp_path) == ["squeezenet-like"]


def test_ctrl_c_in_no_archive_leaves_nothing(example: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import markit.write.create

    def interrupted(*args: object, **kw: object) -> object:
        raise KeyboardInterrupt

    monkeypatch.setattr(markit.write.create, "pump", interrupted)
    monkeypatch.setattr(markit.write.create, "read_whole", interrupted)
    out = tmp_path / "out"
    out.mkdir()
    code = run_main(monkeypatch, ["create", "--model-name", "m", "--model-path", str(example), "--handler", "handler:handle",
                                  "--archive-format", "no-archive", "--export-path", str(out)])
    assert code == 130 and os.listdir(out) == []


@pytest.fixture
def tiny_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A 1 MiB tmpfs: a real full disk. Needs root (CI runs as root)."""
    import subprocess

    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=False).returncode:
        if os.environ.get("CI"):
            pytest.fail("cannot mount a tmpfs in CI")
        pytest.skip("cannot mount a tmpfs (needs root)")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


@pytest.mark.parametrize("fmt", ["default", "tgz", "no-archive"])
def test_a_real_full_disk_leaves_nothing(example: Path, tiny_disk: Path, fmt: str) -> None:
    from tests.conftest import run_markit

    (example / "big.bin").write_bytes(os.urandom(3 << 20))
    done = run_markit("create", "--model-name", "m", "--model-path", str(example), "--handler", "handler:handle",
                      "--archive-format", fmt, "--export-path", str(tiny_disk))
    err = done.stderr.decode()
    assert done.returncode == 1 and "no space left on the device" in err and str(tiny_disk) in err, err
    assert len(err.strip().splitlines()) == 1
    assert os.listdir(tiny_disk) == []


@pytest.mark.parametrize(("signame", "code", "said"), [("SIGINT", 130, b"interrupted; nothing was kept"),
                                                        ("SIGTERM", 143, b"terminated (SIGTERM); nothing was kept")])
def test_a_real_signal_mid_write_leaves_nothing(tmp_path: Path, signame: str, code: int, said: bytes) -> None:
    """Exit 128 + the signal's number, as a shell reports a process the signal killed."""
    import signal
    import subprocess
    import time

    model = tmp_path / "model"
    model.mkdir()
    (model / "handler.py").write_text("def handle(d, c):\n    return d\n")
    with open(model / "weights.bin", "wb") as f:
        f.truncate(8 << 30)  # sparse: slow enough to interrupt, costs no disk to read
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "markit", "create", "--model-name", "m", "--model-path", str(model),
                             "--handler", "handler:handle", "--export-path", str(out)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not os.listdir(out) and time.monotonic() < deadline:  # wait for the temporary file
        time.sleep(0.05)
    assert os.listdir(out), "markit never started writing"
    time.sleep(0.3)
    proc.send_signal(getattr(signal, signame))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert err.endswith(b"markit: " + said + b"\n") and b"Traceback" not in err
    assert os.listdir(out) == []
