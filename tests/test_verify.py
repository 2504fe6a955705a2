"""``markit verify``: every problem code from an archive built here, stdin, several archives, --strict, --json."""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import run_markit
from tests.support.hostile import (
    TEntry,
    ZEntry,
    build_tar,
    build_zip,
    manifest_bytes,
    record_bytes,
    run_main,
    sound_files,
    tgz_of,
    zip_of,
)
from tests.test_read_fuzz import time_limit


def with_record(files: dict[str, bytes], **lie: str) -> dict[str, bytes]:
    return {**files, "MAR-INF/RECORD": record_bytes(files, lie={k.replace("__", "."): v for k, v in lie.items()})}


def entries(**extra: ZEntry) -> list[ZEntry]:
    return [ZEntry(name, data) for name, data in sound_files().items()] + list(extra.values())


def model(**fields: str) -> bytes:
    return manifest_bytes({"runtime": "python", "model": {"modelName": "m", "handler": "handler:handle", **fields}})


# code -> (file name, bytes, extra verify flags)
CASES: dict[str, Callable[[], tuple[str, bytes, list[str]]]] = {
    "not-an-archive": lambda: ("x.mar", b"just some text, not an archive", []),
    "corrupt": lambda: ("x.mar", zip_of(sound_files())[:-22], []),
    "crc-mismatch": lambda: ("x.mar", build_zip(entries(bad=ZEntry("bad.txt", b"hello", method=0, crc=1))), []),
    "digest-mismatch": lambda: ("x.mar", zip_of(with_record(sound_files(), handler__py="ab" * 32)), []),
    "record-mismatch": lambda: ("x.mar", zip_of({**with_record(sound_files()), "extra.txt": b"x"}), []),
    "unsafe-path": lambda: ("x.mar", zip_of({**sound_files(), "../../etc/evil": b"x"}), []),
    "link-entry": lambda: ("x.mar", build_zip(entries(link=ZEntry("l", b"/etc/passwd", mode=0o120777))), []),
    "special-entry": lambda: ("x.tar.gz", build_tar([*(TEntry("m/" + n, d) for n, d in sound_files().items()),
                                                      TEntry("m/fifo", type=tarfile.FIFOTYPE)]), []),
    "duplicate-entry": lambda: ("x.mar", zip_of({**sound_files(), "./handler.py": b"other"}), []),
    "bomb": lambda: ("x.mar", build_zip(entries(o=ZEntry("o.py", b"x" * 100, central={"offset": 0},
                                                          local_name=b"MAR-INF/MANIFEST.json"))), []),
    "missing-manifest": lambda: ("x.mar", zip_of({"handler.py": b"x"}), []),
    "invalid-manifest": lambda: ("x.mar", zip_of({**sound_files(), "MAR-INF/MANIFEST.json": b"[not, json"}), []),
    "invalid-model-name": lambda: ("x.mar", zip_of({**sound_files(), "MAR-INF/MANIFEST.json": manifest_bytes(
        {"model": {"modelName": "bad name!", "handler": "handler:handle"}})}), []),
    "missing-file": lambda: ("x.mar", zip_of({**sound_files(), "MAR-INF/MANIFEST.json": model(serializedFile="w.pt")}),
                             []),
    "excluded-file": lambda: ("x.mar", zip_of(with_record({**sound_files(), ".DS_Store": b"x"})), []),
    "no-record": lambda: ("x.mar", zip_of(sound_files()), []),
    "torchserve-incompatible": lambda: ("x.tar.gz", zip_of(with_record(sound_files())), []),
}


@pytest.mark.parametrize("code", sorted(CASES))
def test_each_problem_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                           code: str) -> None:
    name, data, flags = CASES[code]()
    (tmp_path / name).write_bytes(data)
    status, out, err = run_main(monkeypatch, capsys, "verify", str(tmp_path / name), "--json", *flags)
    report = json.loads(out)
    assert code in [p["code"] for p in report["problems"]], report
    error = any(p["severity"] == "error" for p in report["problems"])
    assert status == (1 if error else 0) and report["ok"] is not error
    assert set(report) == {"archive", "ok", "problems"}
    assert all(set(p) == {"code", "severity", "path", "message"} for p in report["problems"])
    assert len(err.strip().splitlines()) == len(report["problems"]) and "Traceback" not in err


@pytest.mark.parametrize(
    ("flags", "entry", "relaxed"),
    [
        (["--max-size", "1M"], ZEntry("zeros.bin", bytes(2 << 20)), "no-record"),
        (["--max-ratio", "50"], ZEntry("zeros.bin", bytes(2 << 20)), "no-record"),
        ([], ZEntry("longer.txt", b"a" * 5000, size=1000), "bomb"),  # data longer than declared: whatever the limits
        ([], ZEntry("liar.bin", b"a" * 1000, size=3 << 30), "corrupt"),  # a 3 GiB claim from 11 bytes: shorter data
    ],
)
def test_bomb_limits_and_lies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                              flags: list[str], entry: ZEntry, relaxed: str) -> None:
    (tmp_path / "b.mar").write_bytes(build_zip(entries(e=entry)))
    status, out, _ = run_main(monkeypatch, capsys, "verify", str(tmp_path / "b.mar"), "--json", *flags)
    assert status == 1 and "bomb" in [p["code"] for p in json.loads(out)["problems"]]
    _, out, _ = run_main(monkeypatch, capsys, "verify", str(tmp_path / "b.mar"), "--json", "--max-size", "8G",
                         "--max-ratio", "1e9")
    assert next(p["code"] for p in json.loads(out)["problems"]) == relaxed


def test_every_problem_in_one_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    bad = build_zip(entries(a=ZEntry("../evil", b"x"), b=ZEntry("c.txt", b"y", crc=7), c=ZEntry(".DS_Store", b"z"),
                            d=ZEntry("l", b"t", mode=0o120777)))
    (tmp_path / "bad.mar").write_bytes(bad)
    _, out, _ = run_main(monkeypatch, capsys, "verify", str(tmp_path / "bad.mar"), "--json")
    assert sorted(p["code"] for p in json.loads(out)["problems"]) == sorted(
        ["unsafe-path", "crc-mismatch", "excluded-file", "link-entry", "no-record"])


def test_several_archives_strict_and_plain_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "good.mar").write_bytes(zip_of(with_record(sound_files())))
    (tmp_path / "warn.mar").write_bytes(zip_of(sound_files()))
    (tmp_path / "bad.mar").write_bytes(zip_of({"x": b"y"}))
    good, warn, bad = (str(tmp_path / n) for n in ("good.mar", "warn.mar", "bad.mar"))
    status, out, _ = run_main(monkeypatch, capsys, "verify", good, warn, "--json")
    assert status == 0 and [r["ok"] for r in json.loads(out)] == [True, True]
    status, out, _ = run_main(monkeypatch, capsys, "verify", good, warn, "--json", "--strict")
    assert status == 1 and [r["ok"] for r in json.loads(out)] == [True, False]
    status, out, err = run_main(monkeypatch, capsys, "verify", good, bad, warn)
    assert status == 1 and out.splitlines() == [f"{good}: ok (0 errors, 0 warnings)",
                                                f"{bad}: FAILED (1 error, 1 warning)",
                                                f"{warn}: ok (0 errors, 1 warning)"]
    assert f"markit: {bad}: error missing-manifest: no MAR-INF/MANIFEST.json" in err


@pytest.mark.parametrize("fmt", ["zip", "tgz", "zip-descriptors"])
def test_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    files = with_record(sound_files())
    data = {"zip": lambda: zip_of(files), "tgz": lambda: tgz_of(files),
            "zip-descriptors": lambda: build_zip([ZEntry(n, d, descriptor=True) for n, d in files.items()])}[fmt]()
    status, out, _ = run_main(monkeypatch, capsys, "verify", "-", "--json", stdin=data)
    assert status == 0 and json.loads(out) == {"archive": "-", "ok": True, "problems": []}
    damaged = bytearray(data)
    damaged[len(damaged) // 2] ^= 0x55
    status, out, err = run_main(monkeypatch, capsys, "verify", "-", "--json", stdin=bytes(damaged))
    assert status == 1 and json.loads(out)["ok"] is False and "Traceback" not in err


def test_markit_stream_output_through_a_real_pipe(example: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    for fmt in ("default", "tgz"):
        cmd = (f"{sys.executable} -m markit create --model-name m --model-path {example} --handler handler:handle"
               f" --archive-format {fmt} -o - | {sys.executable} -m markit verify - --json --strict")
        done = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["ok"] is True


@pytest.mark.parametrize(
    ("argv", "words"),
    [(["verify"], "Missing argument"), (["verify", "--bogus", "x"], "No such option"),
     (["verify", "-", "-"], "once"), (["verify", "x", "--max-size", "lots"], "--max-size"),
     (["unpack", "x", "-d", ""], "-d/--dest is empty")],
)
def test_usage_errors_exit_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path,
                             argv: list[str], words: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x").write_bytes(b"")
    status, _, err = run_main(monkeypatch, capsys, *argv)
    assert status == 2 and words in err and "Traceback" not in err


def test_local_and_central_names_disagree_java_sees_the_other_file(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import zipfile

    data = build_zip(entries(x=ZEntry("config.json", b"{}", local_name=b"evil__.py")))
    (tmp_path / "x.mar").write_bytes(data)
    _, out, _ = run_main(monkeypatch, capsys, "verify", str(tmp_path / "x.mar"), "--json")
    [problem] = [p for p in json.loads(out)["problems"] if p["code"] == "corrupt"]
    assert "'evil__.py'" in problem["message"] and problem["path"] == "config.json"
    with zipfile.ZipFile(tmp_path / "x.mar") as z:
        assert "config.json" in z.namelist()  # Python's view
    from tests.support.java import read_with_zipinputstream  # skips without java

    assert "evil__.py" in {e.name for e in read_with_zipinputstream(tmp_path / "x.mar")}  # TorchServe's view


def test_a_real_process_prints_one_line_per_problem(tmp_path: Path) -> None:
    (tmp_path / "x.mar").write_bytes(zip_of({"../a": b"1", "b": b"2"}))
    done = run_markit("verify", str(tmp_path / "x.mar"))
    err = done.stderr.decode()
    assert done.returncode == 1 and "Traceback" not in err
    where = tmp_path / "x.mar"
    assert err.splitlines() == [
        f"markit: {where}: error unsafe-path: entry '../a': the name has a '..' component",
        f"markit: {where}: error missing-manifest: no MAR-INF/MANIFEST.json: TorchServe cannot load the archive",
        (f"markit: {where}: warning no-record: no MAR-INF/RECORD: the files' contents cannot be checked against"
         " digests (the real archivers never write one; markit create does)"),
    ]


@pytest.mark.parametrize(("argv", "words"), [(["verify", "/no/such/file.mar"], "no such file or folder"),
                                             (["inspect", "/no/such"], "no such file"),
                                             (["unpack", "/no/such"], "no such file")])
def test_a_missing_archive_is_a_bad_archive(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path, argv: list[str], words: str) -> None:
    monkeypatch.chdir(tmp_path)
    status, _, err = run_main(monkeypatch, capsys, *argv)
    assert status == 1 and words in err and len(err.strip().splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []


def test_every_archive_named_gets_its_report(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "good.mar").write_bytes(zip_of({**sound_files(), "MAR-INF/RECORD": record_bytes(sound_files())}))
    (tmp_path / "notes.txt").write_text("not an archive")
    status, out, _ = run_main(monkeypatch, capsys, "verify", "good.mar", "/nonexistent.mar", "notes.txt", "--json")
    assert status == 1
    shown = json.loads(out)
    assert [(r["archive"], r["ok"]) for r in shown] == [("good.mar", True), ("/nonexistent.mar", False),
                                                        ("notes.txt", False)]
    assert shown[1]["problems"][0]["code"] == "not-an-archive"
    assert "no such file or folder" in shown[1]["problems"][0]["message"]


def test_a_fifo_is_refused_not_waited_on(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.mar")  # nobody writes to it: opening it would block forever
    for command in (["verify", "pipe.mar"], ["inspect", "pipe.mar"], ["unpack", "pipe.mar", "-d", "out"]):
        monkeypatch.chdir(tmp_path)
        with time_limit(10):  # a reader that opens it hangs: fail instead
            status, _, err = run_main(monkeypatch, capsys, *command)
        assert status == 1 and "a FIFO, not a file or folder" in err, (command, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe.mar"]
