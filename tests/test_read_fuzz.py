"""Mutated archives through inspect, verify and unpack: exit 0 or 1 with a message; no traceback, hang or stray file.

Seeds are sound archives of every kind markit reads (its own zip with a record, a real tool's zip, zip
data descriptors, tar.gz, plain tar); hypothesis flips bits, overwrites, cuts, inserts and deletes
bytes, in the archive or (for tar.gz) in the tar inside the gzip layer, then runs all three commands
in this process, from a file or from stdin. A handful of cases also run in real processes.
"""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.hostile import ZEntry, build_zip, record_bytes, run_main, sound_files, tgz_of, zip_of

REAL = Path(__file__).parent / "fixtures" / "real"
BASE = sound_files(config__labels=b"a\n" * 50)
FILES = {**BASE, "MAR-INF/RECORD": record_bytes(BASE)}
SEEDS: dict[str, bytes] = {
    "markit-zip": zip_of(FILES),
    "descriptors": build_zip([ZEntry(n, d, descriptor=True) for n, d in FILES.items()]),
    "stored": build_zip([ZEntry(n, d, method=0) for n, d in FILES.items()]),
    "tma-zip": (REAL / "tma-default.mar").read_bytes(),
    "tgz": tgz_of(FILES),
    "tar": tgz_of(FILES, gz=False),
}
TAR_INSIDE = gzip.decompress(SEEDS["tgz"])
EXAMPLES = int(os.environ.get("MARKIT_FUZZ_EXAMPLES", "250"))  # 250 run in ~10 s; raise it to fuzz longer
TIME_LIMIT = 20  # seconds for the three commands on one ~10 KB archive: far above the ~30 ms they take


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A seed archive with one to four byte-level mutations."""
    inside = draw(st.booleans()) and draw(st.sampled_from(["tgz", "other"])) == "tgz"
    data = bytearray(TAR_INSIDE if inside else SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "cut", "insert", "delete"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            data[at : at + 4] = draw(st.sampled_from([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"PK\x03\x04",
                                                      b"PK\x01\x02", b"/../", b"\x7f\xff\xff\xff"]))
        elif op == "cut":
            del data[at:]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        else:
            del data[at : at + draw(st.integers(1, 64))]
    return gzip.compress(bytes(data), mtime=0) if inside else bytes(data)


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    def expired(signum: int, frame: object) -> None:
        raise TimeoutError(f"a command took over {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def every_file(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def check_outcome(status: int, out: str, err: str) -> None:
    assert status in (0, 1), (status, err)
    assert "Traceback" not in err and "internal error" not in err, err
    if status == 1:
        assert err.strip(), "a failure must say why"


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                    HealthCheck.too_slow])
@given(data=mutated(), via=st.sampled_from(["file", "stdin"]))
def test_mutated_archives(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], data: bytes,
                          via: str) -> None:
    with tempfile.TemporaryDirectory() as temp:
        base = Path(temp)
        (base / "in").mkdir()
        (base / "work").mkdir()
        archive = base / "in" / "x.mar"
        archive.write_bytes(data)
        monkeypatch.chdir(base / "work")
        target = "-" if via == "stdin" else str(archive)
        stdin = data if via == "stdin" else None
        with time_limit(TIME_LIMIT):
            for command in (["inspect", target], ["inspect", target, "--json"], ["verify", target, "--json"]):
                check_outcome(*run_main(monkeypatch, capsys, *command, stdin=stdin))
            status, out, err = run_main(monkeypatch, capsys, "unpack", target, "-d", "out", stdin=stdin)
        check_outcome(status, out, err)
        files = every_file(base)
        allowed = {"in", "in/x.mar", "work"}
        assert {f for f in files if not f.startswith("work/out/") and f != "work/out"} == allowed, files
        assert ("work/out" in files) == (status == 0)


@pytest.mark.parametrize("seed", sorted(SEEDS))
def test_real_processes_never_show_a_traceback(tmp_path: Path, seed: str) -> None:
    data = bytearray(SEEDS[seed])
    for at in range(7, len(data), max(len(data) // 5, 1)):
        data[at] ^= 0x5A  # five hits spread over the archive
    (tmp_path / "x.mar").write_bytes(bytes(data))
    for command in (["inspect", "x.mar"], ["verify", "x.mar"], ["unpack", "x.mar", "-d", "out"], ["verify", "-"]):
        done = subprocess.run([sys.executable, "-m", "markit", *command], cwd=tmp_path, input=bytes(data),
                              capture_output=True, timeout=120, check=False)
        err = done.stderr.decode()
        assert done.returncode in (0, 1) and "Traceback" not in err and "internal error" not in err, err
        assert done.returncode == 0 or err.strip()
    assert set(os.listdir(tmp_path)) <= {"x.mar", "out"}
