"""A remote object replaced while markit reads it in several range requests: one clear error, never a mixed read.

The HTTP server (tests/support/servers.py) sends an ETag and honours ``If-Match``; it replaces the archive
between two requests (``RangeServer.after``). markit pins every request after the first to the first
response's version (markit/storage/pinned.py); S3 and GCS are checked in tests/test_remote_s3.py and
tests/test_remote_gcs.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from markit.storage.http import HTTPStore
from markit.storage.ranged import Fetched, RangeFile, StreamFile
from markit.storage.remote import RemoteError
from tests.support.servers import RangeServer, clean_env

MIB = 1 << 20


def _mar(folder: Path, name: str, weights: bytes) -> bytes:
    """A .mar markit makes of a handler and *weights* (stored: the archive is as large as they are)."""
    model = folder / f"model-{name}"
    model.mkdir()
    (model / "handler.py").write_text("def handle(data, context):\n    return data\n")
    (model / "weights.bin").write_bytes(weights)
    out = folder / name
    done = subprocess.run([sys.executable, "-m", "markit", "create", "--model-name", "m", "--model-path", str(model),
                           "--handler", "handler:handle", "-o", str(out), "-q"], capture_output=True, timeout=120,
                          check=False, env={**clean_env(), "SOURCE_DATE_EPOCH": "1700000000"})
    assert done.returncode == 0, done.stderr
    return out.read_bytes()


def _replace_before(served: RangeServer, name: str, data: bytes, request: int) -> None:
    """Have the server replace *name* with *data* (a new file: a new ETag) before it serves request *request*."""
    def before(number: int) -> None:
        if number == request:
            new = served.root / (name + ".new")
            new.write_bytes(data)
            os.replace(new, served.root / name)

    served.before = before


@pytest.mark.parametrize("if_match", [True, False], ids=["412", "etag-compared"])
def test_a_one_pass_read_stops_when_the_object_changes(served: RangeServer, if_match: bool) -> None:
    old, new = os.urandom(5 * MIB), os.urandom(5 * MIB)
    (served.root / "x.bin").write_bytes(old)
    served.if_match = if_match  # False: a server that ignores If-Match; the ETag each response carries tells
    _replace_before(served, "x.bin", new, 3)  # after the first block and the one fetched ahead
    url = f"{served.base}/x.bin"
    f = StreamFile(HTTPStore(), url, url, len(old), Fetched(), block=MIB)
    got = bytearray()
    with pytest.raises(RemoteError, match=r"x\.bin: changed while being read"):
        while chunk := f.read(300_000):
            got += chunk
    f.close()
    assert bytes(got) == old[: len(got)] and len(got) == 2 * MIB  # only the first version's bytes came out


def test_random_reads_stop_when_the_object_changes(served: RangeServer) -> None:
    old, new = os.urandom(3 * MIB), os.urandom(3 * MIB)
    (served.root / "x.bin").write_bytes(old)
    url = f"{served.base}/x.bin"
    f = RangeFile(HTTPStore(), url, url, len(old), Fetched(), readahead=64 << 10)
    assert f.pread(100, 0) == old[:100]
    (served.root / "x.bin.new").write_bytes(new)
    os.replace(served.root / "x.bin.new", served.root / "x.bin")
    assert f.pread(100, 10) == old[10:110]  # cached: no request
    with pytest.raises(RemoteError, match="changed while being read"):
        f.pread(100, 2 * MIB)


def test_an_unchanged_object_reads_through(served: RangeServer) -> None:
    """Left alone, an object reads through in many requests, each asking for the first one's ETag."""
    data = os.urandom(4 * MIB + 3)
    (served.root / "x.bin").write_bytes(data)
    url = f"{served.base}/x.bin"
    f = StreamFile(HTTPStore(), url, url, len(data), Fetched(), block=MIB)
    assert f.read(-1) + b"".join(iter(lambda: f.read(MIB), b"")) == data
    f.close()


@pytest.mark.parametrize("command", ["verify", "inspect", "unpack"])
def test_the_command_line_says_so_in_one_line(served: RangeServer, tmp_path: Path, command: str) -> None:
    old = _mar(tmp_path, "old.mar", os.urandom(20 * MIB))
    changed = bytearray(old)
    changed[12 * MIB] ^= 0xFF  # a byte of the weights in the second block: the same size, only the ETag tells
    new = bytes(changed)
    (served.root / "m.mar").write_bytes(old)
    _replace_before(served, "m.mar", new, 3)  # after the HEAD and the first GET
    url = f"{served.base}/m.mar"
    args = [command, url] + (["-d", str(tmp_path / "out")] if command == "unpack" else [])
    done = subprocess.run([sys.executable, "-m", "markit", *args], capture_output=True, text=True, timeout=120,
                          check=False, env=clean_env())
    assert done.returncode == 1, done.stderr
    line = done.stderr  # verify reports it as its finding: "URL: error corrupt: changed while being read (...)"
    assert line.count("\n") == 1 and line.startswith(f"markit: {url}: ") and "changed while being read" in line, line
