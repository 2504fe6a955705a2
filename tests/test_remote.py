"""Remote archives over HTTP (a local server that honours Range and counts what it serves), URL dispatch, the
missing-extra line, part sizes, and the local start-up that must not import fsspec."""

from __future__ import annotations

import functools
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from markit.storage.ranged import Fetched, RangeFile, StreamFile
from markit.storage.remote import is_url, scheme_of
from markit.storage.upload import MAX_PARTS, MIN_PART, OVERHEAD, part_size
from tests.conftest import EXAMPLE
from tests.support.hostile import ZEntry, build_zip, record_bytes, sound_files, tgz_of, zip_of
from tests.support.servers import RangeServer, clean_env

pytest.importorskip("fsspec")
MIB = 1 << 20


def markit(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "markit", *args], capture_output=True, text=True, timeout=300,
                          env={**clean_env(), **(env or {})}, check=False)


@pytest.mark.parametrize(("text", "scheme"), [("s3://b/k.mar", "s3"), ("gs://b/k", "gs"), ("HTTPS://h/x", "https"),
                                              ("http://127.0.0.1:1/a", "http"), ("model.mar", None), ("-", None),
                                              ("dir/s3:/x", None), ("./a://b", None)])
def test_urls_are_told_from_paths(text: str, scheme: str | None) -> None:
    assert scheme_of(text) == scheme
    assert is_url(text) == (scheme is not None)


@pytest.mark.parametrize("planned", [0, 1, 100 * MIB, 160 << 30, 1 << 40, 5 << 40])
def test_part_size_fits_s3s_limits(planned: int) -> None:
    part = part_size(planned)
    assert part >= MIN_PART and part % MIB == 0 and part <= 5 << 30
    assert -(-int(planned * OVERHEAD + MIB) // part) <= MAX_PARTS  # 5 TiB fits in 10,000 parts


def test_local_inspect_imports_nothing_of_fsspec(tmp_path: Path) -> None:
    archive = tmp_path / "m.mar"
    archive.write_bytes(zip_of(sound_files()))
    code = ("import sys; from markit.cli import main; sys.argv = ['markit', 'inspect', sys.argv[1]]\n"
            "try: main()\nexcept SystemExit: pass\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('fsspec', 's3fs', 'gcsfs', 'aiohttp', 'botocore')]\n"
            "print('IMPORTED', bad, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code, str(archive)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert "IMPORTED []" in done.stderr, done.stderr


def _big_mar(folder: Path, size: int) -> Path:
    """A .mar with one *size*-byte weight file (sparse zeros: cheap on disk, stored as is) made by markit."""
    model = folder / "model"
    model.mkdir()
    (model / "handler.py").write_text("def handle(data, context):\n    return data\n")
    with open(model / "weights.bin", "wb") as f:
        f.truncate(size)
    out = folder / "big.mar"
    done = markit("create", "--model-name", "big", "--model-path", str(model), "--handler", "handler:handle",
                  "-o", str(out), "-q")
    assert done.returncode == 0, done.stderr
    (model / "weights.bin").unlink()
    return out


def test_inspect_of_a_1_gib_mar_fetches_its_ends_only(served: RangeServer) -> None:
    local = _big_mar(served.root, 1 << 30)
    url = f"{served.base}/{local.name}"
    try:
        served.reset()
        remote = markit("inspect", url, "--json")
        assert remote.returncode == 0, remote.stderr
        requests, sent = served.requests, served.bytes_sent
        assert requests <= 5 and sent < 4 * MIB, (requests, sent)  # the server's own count
        shown, expected = json.loads(remote.stdout), json.loads(markit("inspect", str(local), "--json").stdout)
        assert (shown.pop("archive"), expected.pop("archive")) == (url, str(local))
        assert shown == expected
    finally:
        local.unlink()


def test_verify_and_unpack_read_each_byte_once(served: RangeServer, tmp_path: Path) -> None:
    files = {**sound_files(**{"weights.bin": os.urandom(20 * MIB)})}
    files["MAR-INF/RECORD"] = record_bytes(files)
    data = zip_of(files)
    (served.root / "m.mar").write_bytes(data)
    served.reset()
    done = markit("verify", f"{served.base}/m.mar", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["archive"] == f"{served.base}/m.mar"
    assert served.bytes_sent <= 1.01 * len(data), (served.bytes_sent, len(data))
    served.reset()
    done = markit("unpack", f"{served.base}/m.mar", "-d", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "weights.bin").read_bytes() == files["weights.bin"]
    assert served.bytes_sent <= 1.01 * len(data)


@pytest.mark.parametrize("damage", ["crc", "record", "truncated"])
def test_verify_of_a_damaged_remote_archive_reports_what_local_verify_does(served: RangeServer, damage: str) -> None:
    files = sound_files()
    files["MAR-INF/RECORD"] = record_bytes(files, lie={"weights.bin": "0" * 64} if damage == "record" else None)
    entries = [ZEntry(name, content, crc=1 if damage == "crc" and name == "weights.bin" else None)
               for name, content in files.items()]
    data = build_zip(entries)
    if damage == "truncated":
        data = data[: len(data) - 30]
    (served.root / "bad.mar").write_bytes(data)
    remote = markit("verify", f"{served.base}/bad.mar", "--json")
    local = subprocess.run([sys.executable, "-m", "markit", "verify", "-", "--json"], input=data,
                           capture_output=True, timeout=60, check=False)  # read as stdin is: the same checks
    assert remote.returncode == local.returncode == 1
    codes = [p["code"] for p in json.loads(remote.stdout)["problems"]]
    assert codes == [p["code"] for p in json.loads(local.stdout)["problems"]] and codes


def test_remote_tar_gz_is_read_through_and_says_so(served: RangeServer) -> None:
    files = sound_files()
    (served.root / "m.tar.gz").write_bytes(tgz_of(files))
    done = markit("inspect", f"{served.base}/m.tar.gz", "--json")
    assert done.returncode == 0, done.stderr
    assert "a tar.gz has no index: reading it through" in done.stderr
    assert {e["name"] for e in json.loads(done.stdout)["entries"]} >= set(files)


def test_remote_plain_tar_is_inspected_header_by_header(served: RangeServer) -> None:
    """A .tar has headers at known offsets: inspect reads them by range, skipping the data between."""
    files = sound_files(**{"data.dat": os.urandom(24 * MIB)})
    data = tgz_of(files, gz=False)
    (served.root / "m.tar").write_bytes(data)
    done = markit("inspect", f"{served.base}/m.tar", "--json")
    assert done.returncode == 0, done.stderr
    assert {e["name"] for e in json.loads(done.stdout)["entries"]} >= set(files)
    assert served.bytes_sent < 3 * MIB < len(data)


def test_example_model_from_http_matches_local(served: RangeServer) -> None:
    local = served.root / "sq.mar"
    assert markit("create", "--model-name", "sq", "--model-path", str(EXAMPLE), "--handler", "handler:handle",
                  "-o", str(local), "-q").returncode == 0
    url = f"{served.base}/sq.mar"
    for command in ("inspect", "verify"):
        remote, here = markit(command, url, "--json"), markit(command, str(local), "--json")
        assert remote.returncode == here.returncode == 0, remote.stderr
        shown, expected = json.loads(remote.stdout), json.loads(here.stdout)
        assert (shown.pop("archive"), expected.pop("archive")) == (url, str(local))
        assert shown == expected


@pytest.mark.parametrize(("url", "message"), [
    ("http://127.0.0.1:{port}/missing.mar", "no such object"),
    ("ftp://127.0.0.1/x.mar", "not ftp://"),
])
def test_bad_urls_are_one_line(served: RangeServer, url: str, message: str) -> None:
    url = url.format(port=served.server_address[1])
    done = markit("inspect", url)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and message in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(("url", "module", "extra"), [
    ("s3://bucket/m.mar", "s3fs", "s3"), ("gs://bucket/m.mar", "gcsfs", "gcs"), ("s3://bucket/m.mar", "fsspec", "s3"),
])
@pytest.mark.parametrize("command", ["inspect", "verify", "unpack", "create"])
def test_a_missing_extra_is_one_line_naming_it(tmp_path: Path, url: str, module: str, extra: str,
                                               command: str) -> None:
    blocker = tmp_path / "blocked"
    blocker.mkdir()
    (blocker / f"{module}.py").write_text("raise ImportError('not installed')\n")
    args = [command, url] if command != "create" else [
        "create", "--model-name", "m", "--model-path", str(EXAMPLE), "--handler", "handler:handle", "-o", url]
    done = markit(*args, env={"PYTHONPATH": str(blocker)})
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    assert f"pip install 'markit[{extra}]'" in done.stderr


def test_http_needs_no_extra(served: RangeServer, tmp_path: Path) -> None:
    """http(s):// is read with the standard library: with fsspec and aiohttp unimportable, it still works."""
    blocker = tmp_path / "blocked"
    blocker.mkdir()
    for module in ("fsspec", "aiohttp"):
        (blocker / f"{module}.py").write_text("raise ImportError('not installed')\n")
    (served.root / "m.mar").write_bytes(zip_of(sound_files()))
    done = markit("verify", f"{served.base}/m.mar", env={"PYTHONPATH": str(blocker)})
    assert done.returncode == 0, done.stderr
    done = markit("create", "--model-name", "m", "--model-path", str(EXAMPLE), "--handler", "handler:handle",
                  "-o", f"{served.base}/m2.mar")
    assert done.returncode == 1 and "cannot write to http(s):// URLs" in done.stderr


def test_a_server_that_ignores_range_is_refused(tmp_path: Path) -> None:
    """inspect asks for ranges; a server answering 200 with the whole object is refused, not read through."""
    import http.server
    import threading

    (tmp_path / "m.mar").write_bytes(zip_of(sound_files()))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        done = markit("inspect", f"http://127.0.0.1:{server.server_address[1]}/m.mar")
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert done.returncode == 1 and "ignores Range requests" in done.stderr and done.stderr.count("\n") == 1


def test_gs_urls_go_to_gcsfs_and_only_to_127_0_0_1(served: RangeServer) -> None:
    """No GCS server here: gcsfs is pointed (its emulator setting) at the local HTTP server, which answers 404 to
    every GCS API path. What is checked is the dispatch (the requests reached it) and the one-line error, not GCS."""
    pytest.importorskip("gcsfs")
    port = served.server_address[1]
    env = {"STORAGE_EMULATOR_HOST": served.base, "GCE_METADATA_HOST": f"127.0.0.1:{port}",
           "GCE_METADATA_IP": f"127.0.0.1:{port}", "NO_GCE_CHECK": "True"}
    done = markit("inspect", "gs://bucket/m.mar", env=env)
    assert done.returncode == 1
    assert done.stderr == "markit: gs://bucket/m.mar: no such object\n"
    assert served.requests > 0  # gcsfs asked the local server, the only one it was given


class _Counting:
    """An in-memory object behind the fsspec call the readers use (``cat_file``)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.asked: list[tuple[int, int]] = []

    def cat_file(self, path: str, start: int, end: int) -> bytes:
        self.asked.append((start, end))
        return self.data[start:end]


def test_range_file_never_fetches_a_byte_twice() -> None:
    data = os.urandom(3 * MIB)
    store = _Counting(data)
    f = RangeFile(store, "p", "mem://p", len(data), Fetched(), readahead=64 << 10)  # type: ignore[arg-type]
    assert f.pread(100, len(data) - 100) == data[-100:]
    assert f.pread(1000, 0) == data[:1000]
    assert f.pread(200 << 10, 10) == data[10 : 10 + (200 << 10)]  # part cached, the rest fetched
    assert f.pread(10, len(data)) == b""
    spans = sorted(store.asked)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))  # no overlap between requests


def test_stream_file_reads_in_order_once_and_skips_forward() -> None:
    data = os.urandom(5 * MIB + 7)
    store = _Counting(data)
    f = StreamFile(store, "p", "mem://p", len(data), Fetched(), block=MIB)  # type: ignore[arg-type]
    got = bytearray()
    while chunk := f.read(300_000):
        got += chunk
    f.close()
    assert bytes(got) == data and sum(e - s for s, e in store.asked) == len(data)
    g = StreamFile(_Counting(data), "p", "mem://p", len(data), Fetched(), block=MIB)  # type: ignore[arg-type]
    g.read(10)
    g.seek(3 * MIB)
    assert g.read(5) == data[10 + 3 * MIB : 15 + 3 * MIB]
    g.close()
