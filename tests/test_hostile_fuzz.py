"""Header fields set to extremes: every mutant ends in exit 0 or 1, within seconds, in bounded memory.

tests/test_read_fuzz.py flips and cuts bytes at random; this file aims at the fields that drive
the readers' work: zip sizes, lengths, counts and offsets, tar sizes (octal text, base-256,
negative, non-ASCII digits), names with NUL and control characters, pax records. The tar
header checksum is recomputed after a mutation, so the reader cannot discard the header early.
A sample of mutants also runs in real processes, from a file and from stdin, with their peak
memory measured by the kernel (``wait4``).
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.hostile import ZEntry, build_zip, record_bytes, run_main, sound_files, tgz_of, zip_of
from tests.support.peak import run_measured
from tests.test_read_fuzz import TIME_LIMIT, check_outcome, every_file, time_limit

BASE = sound_files(config__labels=b"a\n" * 50)
FILES = {**BASE, "MAR-INF/RECORD": record_bytes(BASE)}
EXAMPLES = int(os.environ.get("MARKIT_FUZZ_EXAMPLES", "150"))
MEMORY_LIMIT = 64 << 20  # bytes of peak RSS, the bound docs/security.md promises

INTEGERS = [-1, 0, 1, 2**31, 2**31 - 1, 2**32 - 1, 2**32, 2**63, 2**64 - 1, 10**12]
TEXTS = [b"-0000000001", b"\x80" + b"\xff" * 11, b"\xff" * 12, "²²".encode(), b"\x00" * 12, b"77777777777",
         b"0x10", b" 1_000", b"\x0b12", "１２".encode()]
NAMES = [b"a\x00b", b"\x1b[2J", b"../../x", b"a" * 300, b"a/" * 60, "é\u2028".encode(), b"\\evil", b"/abs"]


def _tar_with_pax() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in FILES.items():
            info = tarfile.TarInfo(f"m/{name}")
            info.size = len(data)
            info.pax_headers = {"comment": "x", "path": f"m/{name}"}
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


ZIPS = {"markit": zip_of(FILES), "descriptors": build_zip([ZEntry(n, d, descriptor=True) for n, d in FILES.items()])}
TARS = {"ustar": gzip.decompress(tgz_of(FILES)), "pax": _tar_with_pax()}

# (signature, offset of the field from the signature, width in bytes) of the zip fields that size work
ZIP_FIELDS = [(b"PK\x03\x04", off, w) for off, w in ((14, 4), (18, 4), (22, 4), (26, 2), (28, 2))] + \
             [(b"PK\x01\x02", off, w) for off, w in ((20, 4), (24, 4), (28, 2), (30, 2), (32, 2), (42, 4))] + \
             [(b"PK\x05\x06", off, w) for off, w in ((8, 2), (10, 2), (12, 4), (16, 4), (20, 2))]
TAR_FIELDS = [(124, 12), (100, 8), (116, 12), (148, 8)]  # size, mode, mtime, checksum (before the new sum)


def _set_zip_field(data: bytearray, draw: st.DrawFn) -> None:
    signature, offset, width = draw(st.sampled_from(ZIP_FIELDS))
    spots = [i for i in range(len(data)) if data.startswith(signature, i)]
    if not spots:
        return
    at = draw(st.sampled_from(spots)) + offset
    value = draw(st.sampled_from(INTEGERS)) % (1 << (8 * width))
    data[at : at + width] = value.to_bytes(width, "little")


def _tar_headers(data: bytes) -> list[int]:
    return [i for i in range(0, len(data) - 511, 512) if data[i + 257 : i + 262] == b"ustar"]


def _set_tar_field(data: bytearray, draw: st.DrawFn) -> None:
    headers = _tar_headers(bytes(data))
    at = draw(st.sampled_from(headers))
    choice = draw(st.sampled_from(["number", "name", "pax", "type"]))
    if choice == "number":
        offset, width = draw(st.sampled_from(TAR_FIELDS))
        data[at + offset : at + offset + width] = draw(st.sampled_from(TEXTS)).ljust(width, b"\x00")[:width]
    elif choice == "name":
        data[at : at + 100] = draw(st.sampled_from(NAMES)).ljust(100, b"\x00")[:100]
    elif choice == "type":
        data[at + 156] = draw(st.sampled_from(b"0125LKxgS7"))
    else:
        _set_pax_value(data, at, draw)
    checksum = sum(data[at : at + 148]) + 8 * 32 + sum(data[at + 156 : at + 512])
    data[at + 148 : at + 156] = b"%06o\x00 " % checksum


def _set_pax_value(data: bytearray, at: int, draw: st.DrawFn) -> None:
    """Rewrite the pax record area after a pax header with one hostile record of the same length."""
    if data[at + 156] not in b"xg":
        return
    body = at + 512
    key = draw(st.sampled_from([b"size", b"path", b"linkpath", b"mtime"]))
    value = draw(st.sampled_from([*TEXTS, *NAMES]))
    length = len(key) + len(value) + 3
    record = b"%d %s=%s\n" % (length + len(str(length)), key, value)
    data[body : body + len(record)] = record


@st.composite
def mutants(draw: st.DrawFn) -> tuple[str, bytes]:
    """A sound zip, tar or tar.gz with one to three fields set to extremes."""
    kind = draw(st.sampled_from(["zip", "tar", "tar.gz"]))
    seeds = ZIPS if kind == "zip" else TARS
    data = bytearray(seeds[draw(st.sampled_from(sorted(seeds)))])
    for _ in range(draw(st.integers(1, 3))):
        (_set_zip_field if kind == "zip" else _set_tar_field)(data, draw)
    return kind, gzip.compress(bytes(data), mtime=0) if kind == "tar.gz" else bytes(data)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                    HealthCheck.too_slow])
@given(mutant=mutants(), via=st.sampled_from(["file", "stdin"]))
def test_fields_at_extremes(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                            mutant: tuple[str, bytes], via: str) -> None:
    _, data = mutant
    with tempfile.TemporaryDirectory() as temp:
        base = Path(temp)
        (base / "in").mkdir()
        (base / "work").mkdir()
        (base / "in" / "x.mar").write_bytes(data)
        monkeypatch.chdir(base / "work")
        target, stdin = ("-", data) if via == "stdin" else (str(base / "in" / "x.mar"), None)
        with time_limit(TIME_LIMIT):
            for command in (["inspect", target, "--json"], ["verify", target, "--json"]):
                check_outcome(*run_main(monkeypatch, capsys, *command, stdin=stdin))
            status, out, err = run_main(monkeypatch, capsys, "unpack", target, "-d", "out", stdin=stdin)
        check_outcome(status, out, err)
        left = {f for f in every_file(base) if not f.startswith("work/out")}
        assert left == {"in", "in/x.mar", "work"}, left


def _peak_rss(args: list[str], stdin: bytes | None, cwd: Path) -> tuple[int, int, str]:
    """(exit status, peak RSS in bytes, stderr) of ``python -m markit ARGS``, from the kernel's own count."""
    return run_measured(args, cwd, [stdin] if stdin else [], timeout=TIME_LIMIT)


SAMPLES = [
    ("tar.gz negative size", "tar.gz", 124, b"-0000000001"),
    ("tar.gz base-256 size 2^63", "tar.gz", 124, b"\x80" + b"\x7f" + b"\xff" * 10),
    ("tar non-ASCII digits", "tar", 124, "²²".encode()),
    ("zip local size 2^32-1", "zip", 22, b"\xff\xff\xff\xff"),
    ("zip local name length 65535", "zip", 26, b"\xff\xff"),
]


def _sample(kind: str, offset: int, value: bytes) -> bytes:
    if kind == "zip":
        data = bytearray(ZIPS["markit"])
        data[offset : offset + len(value)] = value
        return bytes(data)
    data = bytearray(TARS["ustar"])
    at = _tar_headers(bytes(data))[1]
    data[at + offset : at + offset + 12] = value.ljust(12, b"\x00")[:12]
    checksum = sum(data[at : at + 148]) + 8 * 32 + sum(data[at + 156 : at + 512])
    data[at + 148 : at + 156] = b"%06o\x00 " % checksum
    return gzip.compress(bytes(data), mtime=0) if kind == "tar.gz" else bytes(data)


@pytest.mark.parametrize(("what", "kind", "offset", "value"), SAMPLES, ids=[s[0] for s in SAMPLES])
@pytest.mark.parametrize("via", ["file", "stdin"])
def test_real_processes_stay_small_and_answer(tmp_path: Path, what: str, kind: str, offset: int, value: bytes,
                                              via: str) -> None:
    data = _sample(kind, offset, value)
    (tmp_path / "x.mar").write_bytes(data)
    target, stdin = ("-", data) if via == "stdin" else (str(tmp_path / "x.mar"), None)
    for args in (["verify", target], ["unpack", target, "-d", "out"]):
        status, peak, err = _peak_rss(args, stdin, tmp_path)
        assert status in (0, 1), f"{what}: {args[0]} ended with {status} (killed after {TIME_LIMIT} s?): {err}"
        assert "Traceback" not in err and "internal error" not in err, (what, args, err)
        assert peak < MEMORY_LIMIT, f"{what}: {args[0]} peaked at {peak >> 20} MiB"
