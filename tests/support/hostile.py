"""Archives built byte by byte for the read-side tests: sound ones, and ones that lie.

``build_zip`` writes every local header, data descriptor and central header itself, so a
test can make any field disagree with any other; ``build_tar`` does the same for tar
headers through ``tarfile.TarInfo``. Nothing here uses markit.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import struct
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "MANIFEST",
    "TEntry",
    "Unseekable",
    "ZEntry",
    "build_tar",
    "build_zip",
    "folder_of",
    "manifest_bytes",
    "record_bytes",
    "run_main",
    "sound_files",
    "tgz_of",
    "zip_of",
]

STORE, DEFLATE = 0, 8
FLAG_DESCRIPTOR = 0x08
FLAG_UTF8 = 0x800
U32 = 0xFFFFFFFF

MANIFEST = {"runtime": "python", "model": {"modelName": "m", "handler": "handler:handle"}}


def manifest_bytes(manifest: object = None) -> bytes:
    """A manifest's bytes (the default: model ``m``, handler ``handler:handle``)."""
    return json.dumps(MANIFEST if manifest is None else manifest, indent=2).encode()


def record_bytes(files: dict[str, bytes], *, lie: dict[str, str] | None = None) -> bytes:
    """markit's MAR-INF/RECORD for *files*; *lie* replaces some digests."""
    rows = [f"{name},sha256={(lie or {}).get(name, hashlib.sha256(data).hexdigest())},{len(data)}"
            for name, data in sorted(files.items())]
    return ("\n".join([*rows, "MAR-INF/RECORD,,"]) + "\n").encode()


def sound_files(**extra: bytes) -> dict[str, bytes]:
    """A small loadable model: manifest, handler, weights (plus *extra*)."""
    files = {"MAR-INF/MANIFEST.json": manifest_bytes(), "handler.py": b"def handle(data, ctx):\n    return data\n",
             "weights.bin": bytes(range(256)) * 8}
    files.update({k.replace("__", "/"): v for k, v in extra.items()})
    return files


@dataclass
class ZEntry:
    """One zip entry, and every way its headers may lie."""

    name: str | bytes
    data: bytes = b""
    method: int = DEFLATE
    mode: int | None = 0o100644
    descriptor: bool = False
    local_name: bytes | None = None
    crc: int | None = None
    """Declared CRC (both headers) instead of the real one."""
    size: int | None = None
    """Declared size (both headers) instead of the real one."""
    local: dict[str, int] = field(default_factory=dict)
    """Overrides of the local header only: crc, csize, size, method, flags."""
    central: dict[str, int] = field(default_factory=dict)
    """Overrides of the central header only: crc, csize, size, method, flags, offset."""
    payload: bytes | None = None
    """The stored bytes, instead of compressing *data*."""


def _payload(e: ZEntry) -> bytes:
    if e.payload is not None:
        return e.payload
    if e.method == DEFLATE:
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        return c.compress(e.data) + c.flush()
    return e.data


def build_zip(entries: list[ZEntry], *, extra_central: list[bytes] | None = None, gap: bytes = b"",
              count: int | None = None) -> bytes:
    """A zip of *entries* as their fields say; *gap* goes between the last entry and the directory."""
    out = io.BytesIO()
    central = []
    for e in entries:
        raw = e.name.encode() if isinstance(e.name, str) else e.name
        payload = _payload(e)
        crc = zlib.crc32(e.data) if e.crc is None else e.crc
        size = len(e.data) if e.size is None else e.size
        flags = (FLAG_DESCRIPTOR if e.descriptor else 0) | (0 if raw.isascii() else FLAG_UTF8)
        fields = {"crc": crc, "csize": len(payload), "size": size, "method": e.method, "flags": flags}
        loc = {**fields, **({"crc": 0, "csize": 0, "size": 0} if e.descriptor else {}), **e.local}
        offset = out.tell()
        lname = raw if e.local_name is None else e.local_name
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, loc["flags"], loc["method"], 0, 0x21, loc["crc"],
                              loc["csize"], loc["size"], len(lname), 0) + lname + payload)
        if e.descriptor:
            out.write(struct.pack("<IIII", 0x08074B50, crc, len(payload), size))
        cen = {**fields, "offset": offset, **e.central}
        attr = (e.mode or 0) << 16
        central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0x0314, 20, cen["flags"], cen["method"], 0, 0x21,
                                   cen["crc"], cen["csize"], cen["size"], len(raw), 0, 0, 0, 0, attr, cen["offset"])
                       + raw)
    out.write(gap)
    cd_offset = out.tell()
    central += extra_central or []
    directory = b"".join(central)
    n = len(central) if count is None else count
    out.write(directory + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, len(directory), cd_offset, 0))
    return out.getvalue()


@dataclass
class TEntry:
    """One tar member."""

    name: str
    data: bytes = b""
    type: bytes = tarfile.REGTYPE
    linkname: str = ""
    mode: int = 0o644
    size: int | None = None


def build_tar(entries: list[TEntry], *, gz: bool = True, end: bool = True) -> bytes:
    """A tar (gzipped by default) of *entries*, PAX format."""
    out = io.BytesIO()
    for e in entries:
        info = tarfile.TarInfo(e.name)
        info.type = e.type
        info.size = len(e.data) if e.size is None else e.size
        info.mode = e.mode
        info.linkname = e.linkname
        out.write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
        if e.type in (tarfile.REGTYPE, tarfile.AREGTYPE):
            out.write(e.data + bytes(-len(e.data) % 512))
    if end:
        out.write(bytes(1024))
    data = out.getvalue()
    return gzip.compress(data, mtime=0) if gz else data


def zip_of(files: dict[str, bytes], **kw: object) -> bytes:
    """A plain zip of *files*, deflated."""
    return build_zip([ZEntry(name, data) for name, data in files.items()], **kw)  # type: ignore[arg-type]


def tgz_of(files: dict[str, bytes], root: str | None = "m", **kw: object) -> bytes:
    """A tar.gz of *files* under *root*/."""
    prefix = f"{root}/" if root else ""
    return build_tar([TEntry(prefix + name, data) for name, data in files.items()], **kw)  # type: ignore[arg-type]


class Unseekable(io.RawIOBase):
    """A write-only stream *out* seen through: :mod:`zipfile` cannot seek in it, so it writes data descriptors
    (as torch's writer and ``markit create -o -`` do)."""

    def __init__(self, out: io.BytesIO) -> None:
        self.out = out

    def writable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:  # type: ignore[override]
        return self.out.write(b)


def folder_of(path: Path, files: dict[str, bytes]) -> Path:
    """*path* made a folder holding *files* (names with ``/`` make subfolders); returns *path*."""
    for name, data in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(data)
    return path


def run_main(monkeypatch: object, capsys: object, *argv: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    """``markit ARGV`` in this process (stdin fed *stdin*): (exit code, stdout, stderr)."""
    import sys

    from markit import cli

    monkeypatch.setattr(sys, "argv", ["markit", *argv])  # type: ignore[attr-defined]
    if stdin is not None:
        fed = io.TextIOWrapper(io.BufferedReader(io.BytesIO(stdin)))
        monkeypatch.setattr(sys, "stdin", fed)  # type: ignore[attr-defined]
    try:
        cli.main()
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    out, err = capsys.readouterr()  # type: ignore[attr-defined]
    return code, out, err
