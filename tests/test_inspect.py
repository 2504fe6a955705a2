"""``markit inspect``: the JSON shape, the readable table, and no entry data read from a zip file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import markit.formats.zip.reader
from tests.support.hostile import ZEntry, build_zip, record_bytes, run_main, sound_files, tgz_of, zip_of

ENTRY_KEYS = {"name", "type", "size", "compressed_size", "method", "crc32", "mode", "sha256", "link"}


def files_with_record() -> dict[str, bytes]:
    files = sound_files()
    return {**files, "MAR-INF/RECORD": record_bytes(files)}


@pytest.mark.parametrize(("fmt", "root"), [("zip", None), ("tar.gz", "m"), ("directory", None)])
def test_json_shape(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], fmt: str,
                    root: str | None) -> None:
    files = files_with_record()
    if fmt == "directory":
        path = tmp_path / "folder"
        for name, data in files.items():
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            (path / name).write_bytes(data)
    else:
        path = tmp_path / ("m.mar" if fmt == "zip" else "m.tar.gz")
        path.write_bytes(zip_of(files) if fmt == "zip" else tgz_of(files))
    status, out, err = run_main(monkeypatch, capsys, "inspect", str(path), "--json")
    assert status == 0, err
    shown = json.loads(out)
    assert set(shown) == {"format", "root", "manifest", "entries"}
    assert (shown["format"], shown["root"]) == (fmt, root)
    assert shown["manifest"] == json.loads(files["MAR-INF/MANIFEST.json"])
    by_name = {e["name"]: e for e in shown["entries"] if e["type"] == "file"}
    assert set(by_name) == set(files) and all(set(e) == ENTRY_KEYS for e in shown["entries"])
    assert by_name["weights.bin"]["size"] == len(files["weights.bin"])
    assert by_name["weights.bin"]["sha256"] == record_bytes(sound_files()).decode().split("weights.bin,sha256=")[1][:64]
    if fmt == "zip":
        assert by_name["handler.py"]["method"] == "deflate" and len(by_name["handler.py"]["crc32"]) == 8


def test_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_main(monkeypatch, capsys, "inspect", "-", "--json", stdin=tgz_of(files_with_record()))
    assert status == 0 and json.loads(out)["root"] == "m" and len(json.loads(out)["entries"]) == 4


def test_no_entry_data_is_read_from_a_zip_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    big = ZEntry("weights.bin", b"", method=0, size=64 << 20, payload=b"\x00" * (64 << 20), crc=0)
    path = tmp_path / "big.mar"
    path.write_bytes(build_zip([ZEntry(n, d) for n, d in sound_files().items() if n != "weights.bin"] + [big]))
    read: list[int] = []
    real = markit.formats.zip.reader.os.pread

    def counting(fd: int, n: int, offset: int) -> bytes:
        data = real(fd, n, offset)
        read.append(len(data))
        return data

    monkeypatch.setattr(markit.formats.zip.reader.os, "pread", counting)
    status, out, _ = run_main(monkeypatch, capsys, "inspect", str(path), "--json")
    assert status == 0 and {e["name"]: e["size"] for e in json.loads(out)["entries"]}["weights.bin"] == 64 << 20
    assert sum(read) < 200_000  # the tail, the manifest: not the 64 MiB


def test_readable_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.mar"
    path.write_bytes(zip_of({**files_with_record(), "evil\x1b[2Jname": b"x"}))
    status, out, _ = run_main(monkeypatch, capsys, "inspect", str(path))
    assert status == 0
    lines = out.splitlines()
    assert lines[0].startswith(f"archive   {path} (zip, 5 entries,") and "model     m" in lines
    assert "handler   handler:handle" in lines
    header = next(line for line in lines if line.lstrip().startswith("size"))
    assert header.split() == ["size", "stored", "method", "crc32", "mode", "sha256", "name"]
    assert "\x1b" not in out and "'evil\\x1b[2Jname'" in out
    weights = next(line for line in lines if line.endswith("weights.bin"))
    assert "2,048" in weights and "deflate" in weights


@pytest.mark.parametrize(
    ("data", "words"),
    [(b"neither zip nor tar", "not a zip, tar or tar.gz"), (zip_of(sound_files())[:-30], "end-of-central-directory"),
     (tgz_of(sound_files())[:-30], "gzip stream ends early")],
)
def test_unreadable_archives_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str], data: bytes, words: str) -> None:
    (tmp_path / "x.mar").write_bytes(data)
    status, out, err = run_main(monkeypatch, capsys, "inspect", str(tmp_path / "x.mar"))
    assert status == 1 and out == "" and words in err and len(err.strip().splitlines()) == 1


def test_inspect_imports_little() -> None:
    code = ("import sys\nfrom markit import cli\nsys.argv = ['markit', 'inspect', sys.argv[1]]\n"
            "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
            "names = ('markit', 'rich', 'hashlib', 'threading', 'tarfile')\n"
            "print(sorted(m for m in sys.modules if m.startswith(names)), file=sys.stderr)")
    fixture = Path(__file__).parent / "fixtures" / "real" / "tma-default.mar"
    done = subprocess.run([sys.executable, "-c", code, str(fixture)], capture_output=True, text=True, check=True)
    loaded = done.stderr.strip()
    for heavy in ("markit.write", "markit.engine.datapass", "markit.read.datacheck", "markit.formats.tar", "'rich",
                  "tarfile"):
        assert heavy not in loaded, loaded


@pytest.mark.parametrize("files", [files_with_record(), {}])
def test_streamed_json_is_the_summary(tmp_path: Path, files: dict[str, bytes]) -> None:
    import io

    import markit
    from markit.cli.show import write_json

    (tmp_path / "m.mar").write_bytes(zip_of(files))
    summary = markit.inspect(str(tmp_path / "m.mar"))
    out = io.StringIO()
    write_json(summary, out)
    assert json.loads(out.getvalue()) == summary.to_json()
