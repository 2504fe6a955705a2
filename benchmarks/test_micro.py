"""Micro-benchmarks of markit's pure parts, each also a test of what it computes.

``python -m pytest -q benchmarks --benchmark-enable`` times them; CI runs them
once with ``--benchmark-disable`` (the default from pyproject) so they keep working.
No time is ever asserted: this machine is shared and noisy.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from markit.formats.zip import records as zf
from markit.model.manifest import build_manifest, manifest_bytes, parse_handler
from markit.model.record import RECORD_NAME, RecordRow, format_record, parse_record
from markit.write.plan import Plan, Request, make_plan
from markit.write.snapshot import Input, Skipped, SourceFile

N_FILES = 100_000  # the "planning a 100,000-file snapshot"
N_HEADERS = 100_000  # >= 65,535 members, so the end records take the zip64 path
EXCLUDED_EVERY = 100  # one file in a hundred is hidden, so exclusions are planned too
NOW = 1_800_000_000.0
HEX = "0123456789abcdef" * 4


def big_snapshot(n: int = N_FILES) -> list[Input]:
    """A literal snapshot: a model folder of *n* files in 100 subfolders, plus the handler."""
    files = [SourceFile("handler.py", "/ckpt/handler.py", 2_000, 0o644, NOW)]
    for i in range(n):
        base = f".cache{i:06d}.bin" if i % EXCLUDED_EVERY == 0 else f"shard{i:06d}.{('bin', 'json', 'dat')[i % 3]}"
        name = f"layer{i % 100:03d}/{base}"
        files.append(SourceFile(name, f"/ckpt/{name}", 4_096 + i, 0o755 if i % 7 == 0 else 0o644, NOW - i))
    files.sort(key=lambda f: f.name)
    skipped = (Skipped("__pycache__", "/ckpt/__pycache__", "folder: Python byte-code cache __pycache__"),)
    return [Input("--model-path", "/ckpt", True, tuple(files), skipped)]


def request() -> Request:
    return Request(model_name="big", handler="handler:handle", archiver_version="markit bench", now=NOW,
                   version="1.0", excludes=("*.tmp",))


def test_plan_100k_files(benchmark: BenchmarkFixture) -> None:
    inputs = big_snapshot()
    plan: Plan = benchmark(make_plan, request(), inputs)
    hidden = N_FILES // EXCLUDED_EVERY
    assert len(plan.entries) == N_FILES - hidden + 1
    assert len(plan.exclusions) == hidden + 1  # the hidden files and the skipped folder
    names = [e.name for e in plan.entries]
    assert names == sorted(names)
    methods = {e.name.rsplit(".", 1)[-1]: e.method for e in plan.entries}
    assert methods == {"bin": "store", "json": "deflate", "dat": "deflate", "py": "deflate"}
    assert {e.mode for e in plan.entries} == {0o644, 0o755}
    assert plan.total_size == sum(f.size for f in inputs[0].files if not f.name.split("/")[-1].startswith("."))


def test_manifest(benchmark: BenchmarkFixture) -> None:
    handler = parse_handler("handler.py:handle")

    def build() -> bytes:
        manifest = build_manifest(model_name="big", handler=handler, runtime="python", created="01/01/2027 00:00:00",
                                  archiver_version="markit bench", serialized_file="model.bin", version="1.0",
                                  requirements_file="requirements.txt")
        return manifest_bytes(manifest)

    data = benchmark(build)
    parsed = json.loads(data)
    assert list(parsed) == ["createdOn", "runtime", "model", "archiverVersion"]
    assert parsed["model"] == {"modelName": "big", "serializedFile": "model.bin", "handler": "handler.py:handle",
                               "modelVersion": "1.0", "requirementsFile": "requirements.txt"}
    assert data.startswith(b'{\n  "createdOn"')


def records(n: int = N_FILES) -> list[RecordRow]:
    return [RecordRow(f"layer{i % 100:03d}/shard {i:06d},x.bin", HEX, 4_096 + i) for i in range(n)]


def test_record_format_100k(benchmark: BenchmarkFixture) -> None:
    rows = records()
    data: bytes = benchmark(format_record, rows)
    lines = data.decode().splitlines()
    assert len(lines) == N_FILES + 1
    assert lines[0] == f'"layer000/shard 000000,x.bin",sha256={HEX},4096'  # a comma in a name is quoted
    assert lines[-1] == f"{RECORD_NAME},,"


def test_record_parse_100k(benchmark: BenchmarkFixture) -> None:
    rows = records()
    data = format_record(rows)
    parsed = benchmark(parse_record, data)
    assert parsed == rows


def members(n: int) -> list[zf.ZipMember]:
    """*n* members; the last ones sit past 4 GiB and the very last is over 4 GiB, so zip64 extras appear."""
    date_time = zf.dos_date_time(NOW)
    out = []
    for i in range(n):
        size = 5 << 30 if i == n - 1 else 1_000 + i
        offset = i * 2_000 + (5 << 30 if i >= n - 2 else 0)
        out.append(zf.ZipMember(f"layer{i % 100:03d}/shard{i:06d}.bin", zf.METHOD_STORE, 0, date_time,
                                i, size, size, offset, 0o644))
    return out


def encode_directory(items: list[zf.ZipMember]) -> tuple[list[bytes], bytes]:
    """Every member's local header, then the central directory with its end records."""
    locals_ = [zf.local_header(m.name, method=m.method, date_time=m.date_time, crc=m.crc,
                               compressed_size=m.compressed_size, size=m.size, descriptor=False,
                               zip64=m.size >= zf.U32_MAX) for m in items]
    central = b"".join(zf.central_header(m) for m in items)
    return locals_, central + zf.end_records(len(items), 1 << 33, len(central))


def test_zip_headers_100k(benchmark: BenchmarkFixture) -> None:
    items = members(N_HEADERS)
    locals_, directory = benchmark(encode_directory, items)
    assert len(locals_) == N_HEADERS
    assert locals_[0][:4] == b"PK\x03\x04" and locals_[-1][-20:-16] == b"\x01\x00\x10\x00"  # zip64 extra
    end = directory[-22:]
    assert end[:4] == b"PK\x05\x06" and struct.unpack("<H", end[10:12])[0] == 0xFFFF  # count overflows: zip64
    eocd64 = directory[-22 - 20 - 56 : -22 - 20]
    assert eocd64[:4] == b"PK\x06\x06" and struct.unpack("<Q", eocd64[32:40])[0] == N_HEADERS


@pytest.mark.parametrize("descriptor", [False, True])
def test_headers_make_a_zip_zipfile_reads(descriptor: bool) -> None:
    """The encoders the benchmark times produce a zip the stdlib reads back (not timed)."""
    out = io.BytesIO()
    written = []
    for i in range(300):
        data = f"member {i}\n".encode() * (i + 1)
        crc = zipfile.crc32(data)
        offset = out.tell()
        name = f"d{i % 7}/f{i:03d}.txt"
        date_time = zf.dos_date_time(NOW)
        method = zf.METHOD_DEFLATE if descriptor else zf.METHOD_STORE
        payload = _deflate_stored(data) if descriptor else data
        out.write(zf.local_header(name, method=method, date_time=date_time, crc=crc, compressed_size=len(payload),
                                  size=len(data), descriptor=descriptor, zip64=False))
        out.write(payload)
        if descriptor:
            out.write(zf.data_descriptor(crc, len(payload), len(data), zip64=False))
        flags = zf.FLAG_DESCRIPTOR if descriptor else 0
        written.append((zf.ZipMember(name, method, flags, date_time, crc, len(payload), len(data), offset, 0o644),
                        data))
    start = out.tell()
    out.write(b"".join(zf.central_header(m) for m, _ in written))
    out.write(zf.end_records(len(written), start, out.tell() - start))
    with zipfile.ZipFile(io.BytesIO(out.getvalue())) as archive:
        assert archive.testzip() is None
        assert [(m.name, data) for m, data in written] == [(n, archive.read(n)) for n in archive.namelist()]


def _deflate_stored(data: bytes) -> bytes:
    """*data* as one final deflate stored block (it is under 64 KiB)."""
    n = len(data)
    return bytes((1, n & 0xFF, n >> 8, ~n & 0xFF, (~n >> 8) & 0xFF)) + data
