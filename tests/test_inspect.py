"""``markit inspect``: the JSON shape, the readable table, and no entry data read from a zip file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import markit.formats.zip.reader
from tests.support.hostile import ZEntry, build_zip, folder_of, record_bytes, run_main, sound_files, tgz_of, zip_of

ENTRY_KEYS = {"name", "type", "size", "compressed_size", "method", "crc32", "mode", "sha256", "link"}


def files_with_record() -> dict[str, bytes]:
    files = sound_files()
    return {**files, "MAR-INF/RECORD": record_bytes(files)}


@pytest.mark.parametrize(("fmt", "root"), [("zip", None), ("tar.gz", "m"), ("directory", None)])
def test_json_shape(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], fmt: str,
                    root: str | None) -> None:
    files = files_with_record()
    if fmt == "directory":
        path = folder_of(tmp_path / "folder", files)
    else:
        path = tmp_path / ("m.mar" if fmt == "zip" else "m.tar.gz")
        path.write_bytes(zip_of(files) if fmt == "zip" else tgz_of(files))
    status, out, err = run_main(monkeypatch, capsys, "inspect", str(path), "--json")
    assert status == 0, err
    shown = json.loads(out)
    assert set(shown) == {"archive", "format", "root", "manifest", "entries"}
    assert shown["archive"] == str(path)
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


def _table_the_long_way(info: object) -> list[str]:
    """The table as it was first written: every cell formatted, widths taken from the cells, then the rows."""
    import stat

    from markit.cli.show import shown

    def size(n: int | None) -> str:
        return "-" if n is None else f"{n:,}"

    rows = [("size", "stored", "method", "crc32", "mode", "sha256", "name")]
    for m in info.entries:  # type: ignore[attr-defined]
        sha = info.digests.get(m.name)  # type: ignore[attr-defined]
        extra = ("" if m.kind in ("file", "dir") else f" [{m.kind}]") + (
            f" -> {shown(m.detail)}" if m.kind in ("symlink", "hardlink") else "")
        rows.append((size(m.size), size(m.compressed_size), m.method or "-", "-" if m.crc is None else f"{m.crc:08x}",
                     "-" if m.mode is None else f"{stat.S_IMODE(m.mode):o}", sha[:12] if sha else "-",
                     shown(m.name) + extra))
    widths = [max(len(row[i]) for row in rows) for i in range(6)]
    return ["  ".join([row[0].rjust(widths[0]), row[1].rjust(widths[1]),
                       *(row[i].ljust(widths[i]) for i in range(2, 6)), row[6]]) for row in rows]


@pytest.mark.parametrize("digests", [{}, {"a": "f" * 64}, {"b\u202e": "0" * 64, "zzz": "1" * 64}])
def test_the_table_in_one_pass_is_the_table(digests: dict[str, str]) -> None:
    import io

    from markit.cli.show import render, write_table
    from markit.formats.base import Member
    from markit.read.summary import ArchiveInfo

    entries = (Member("a", "file", 12_345_678, 1_000, "deflate", 0xABC, 0o100755), Member("b\u202e", "file", None),
               Member("d/", "dir", 0, None, None, None, 0o40700), Member("l", "symlink", 0, mode=0o120777,
                                                                         detail="../x\x1b"),
               Member("h", "hardlink", 0, detail="a"), Member("f", "special", 0, detail="a FIFO"),
               Member("big", "file", 10**12, 10**12, "method 93", 0, 0o100644))
    for some in (entries, entries[1:3], ()):
        info = ArchiveInfo("x.mar", "zip", None, None, "missing", some, digests)
        lines = list(render(info))
        head = lines.index("") + 1
        assert lines[head:] == _table_the_long_way(info)
        out = io.StringIO()
        write_table(info, out)
        assert out.getvalue() == "\n".join(lines) + "\n"
