"""What torch-model-archiver 0.12.0 and MMS model-archiver 1.0.3 wrote, read back by inspect, verify and unpack.

The fixtures (``tests/fixtures/real/``) come from the real tools run on ``examples/squeezenet-like``
(``tests/fixtures/make_real.py``); unpacking one must give back the example's exact bytes, laid out as
each tool lays them out (torch-model-archiver copies a folder's *contents* to the root).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.hostile import run_main

REAL = Path(__file__).parent / "fixtures" / "real"
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "squeezenet-like"
FIXTURES = ["tma-default.mar", "tma-zip-store.mar", "tma-tgz.tar.gz", "tma-no-archive", "mms-default.mar",
            "mms-tgz.tar.gz", "mms-no-archive"]
FORMATS = {".mar": "zip", ".tar.gz": "tar.gz", "no-archive": "directory"}


def label(fixture: str) -> str:
    return fixture.split(".")[0]


def expected_files(fixture: str) -> dict[str, bytes]:
    """The example's files where the tool put them, plus the manifest it wrote."""
    files = {p.relative_to(EXAMPLE).as_posix(): p.read_bytes() for p in EXAMPLE.rglob("*") if p.is_file()}
    if fixture.startswith("tma"):
        files["labels_extra.txt"] = files.pop("config/labels_extra.txt")
    files["MAR-INF/MANIFEST.json"] = (REAL / f"{label(fixture)}.MANIFEST.json").read_bytes()
    return files


def unpacked(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("fixture", FIXTURES)
def test_verify_finds_only_the_missing_record(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                              fixture: str) -> None:
    status, out, _ = run_main(monkeypatch, capsys, "verify", str(REAL / fixture), "--json")
    report = json.loads(out)
    assert status == 0 and report["ok"] is True
    assert [p["code"] for p in report["problems"]] == ["no-record"]
    assert run_main(monkeypatch, capsys, "verify", str(REAL / fixture), "--strict")[0] == 1


@pytest.mark.parametrize("fixture", FIXTURES)
def test_inspect(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], fixture: str) -> None:
    status, out, _ = run_main(monkeypatch, capsys, "inspect", str(REAL / fixture), "--json")
    shown = json.loads(out)
    fmt = next(f for suffix, f in FORMATS.items() if fixture.endswith(suffix))
    assert status == 0 and shown["format"] == fmt
    assert shown["root"] == ("squeezenet-like" if fmt == "tar.gz" else None)
    assert shown["manifest"] == json.loads((REAL / f"{label(fixture)}.MANIFEST.json").read_bytes())
    files = {e["name"]: e["size"] for e in shown["entries"] if e["type"] == "file"}
    assert files == {name: len(data) for name, data in expected_files(fixture).items()}


@pytest.mark.parametrize("fixture", FIXTURES)
def test_unpack_gives_back_the_original_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str], fixture: str) -> None:
    status, _, err = run_main(monkeypatch, capsys, "unpack", str(REAL / fixture), "-d", str(tmp_path / "out"))
    assert status == 0, err
    assert unpacked(tmp_path / "out") == expected_files(fixture)


@pytest.mark.parametrize("fixture", ["tma-default.mar", "tma-zip-store.mar", "mms-default.mar", "tma-tgz.tar.gz",
                                     "mms-tgz.tar.gz"])
def test_from_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                    fixture: str) -> None:
    data = (REAL / fixture).read_bytes()
    status, out, _ = run_main(monkeypatch, capsys, "verify", "-", "--json", stdin=data)
    assert status == 0 and [p["code"] for p in json.loads(out)["problems"]] == ["no-record"]
    monkeypatch.chdir(tmp_path)
    assert run_main(monkeypatch, capsys, "unpack", "-", stdin=data)[0] == 0
    assert unpacked(tmp_path / "squeezenet-like") == expected_files(fixture)


@pytest.mark.parametrize("fixture", ["tma-default.mar", "tma-zip-store.mar", "mms-default.mar"])
def test_names_and_sizes_agree_with_torchserves_reader(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str], fixture: str) -> None:
    from tests.support.java import read_with_zipinputstream  # skips without java

    java = {e.name: e.size for e in read_with_zipinputstream(REAL / fixture)}
    _, out, _ = run_main(monkeypatch, capsys, "inspect", str(REAL / fixture), "--json")
    assert {e["name"]: e["size"] for e in json.loads(out)["entries"]} == java
