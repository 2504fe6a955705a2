"""The jobs the comparison times: markit's commands, the machine's limits, and the peers.

Each job turns a :class:`Context` (the checkpoint, an empty output folder, the reference
archive) into a :class:`~benchmarks.measure.Command`. ``kind`` says what it is in the report:
``limit`` (what the machine can do: cat, cp -r, one SHA-256 pass), ``peer`` (another tool doing
the same job) or ``markit``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks.checkpoint import Checkpoint
from benchmarks.measure import Command

__all__ = ["JOBS", "Cli", "Context", "Job", "discover_cli"]

PY = sys.executable
MARKIT = [PY, "-m", "markit"]

SHA256_PASS = """
import hashlib, sys
buffer = bytearray(1 << 20)
view = memoryview(buffer)
for path in sys.argv[1:]:
    sha = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buffer):
            sha.update(view[:n])
    print(sha.hexdigest(), path)
"""

BARE_MANIFEST = (
    "import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read('MAR-INF/MANIFEST.json'))"
)

ZIPSTREAM_STORED = """
import sys
from zipstream import ZIP_STORED, ZipStream
zs = ZipStream.from_path(sys.argv[1], compress_type=ZIP_STORED)
with open(sys.argv[2], "wb") as out:
    for chunk in zs:
        out.write(chunk)
"""


@dataclass(frozen=True)
class Cli:
    """Which markit commands exist in the code under test, and how ``unpack`` names its destination."""

    commands: frozenset[str]
    unpack_style: str = "positional"
    """``-o`` (``unpack ARCHIVE -o DEST``), ``--dest`` or ``positional`` (``unpack ARCHIVE DEST``)."""
    unpack_quiet: bool = False

    def unpack(self, archive: Path, dest: Path) -> list[str]:
        quiet = ["-q"] if self.unpack_quiet else []
        if self.unpack_style == "-o":
            return [*MARKIT, "unpack", str(archive), "-o", str(dest), *quiet]
        if self.unpack_style == "--dest":
            return [*MARKIT, "unpack", str(archive), "--dest", str(dest), *quiet]
        return [*MARKIT, "unpack", str(archive), str(dest), *quiet]


def discover_cli() -> Cli:
    """Ask ``python -m markit X --help`` which of inspect, verify and unpack exist (they are being written)."""
    found = {"create"}
    unpack_help = ""
    for name in ("inspect", "verify", "unpack"):
        done = subprocess.run([*MARKIT, name, "--help"], check=False, capture_output=True, text=True,
                              env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"})
        if done.returncode == 0:
            found.add(name)
            if name == "unpack":
                unpack_help = done.stdout
    style = "positional"
    if re.search(r"(--output\b|\s-o\b)", unpack_help):
        style = "-o"
    elif "--dest" in unpack_help:
        style = "--dest"
    return Cli(frozenset(found), style, "--quiet" in unpack_help)


@dataclass(frozen=True)
class Context:
    """Everything a job's command needs."""

    ckpt: Checkpoint
    out: Path
    """An empty folder for the job's output."""
    tmp: Path
    """``TMPDIR`` for every job, inside the work folder so temporary copies are counted."""
    ref: Path
    """markit's default ``.mar`` of this checkpoint, made before the timed runs."""
    tiny: Path
    """A ``.mar`` of the handler alone, for inspect's independence of the archive size."""
    tma: Path | None
    """torch-model-archiver's ``bin`` folder, or None when skipped."""
    cli: Cli

    @property
    def env(self) -> dict[str, str]:
        return {"TMPDIR": str(self.tmp)}


@dataclass(frozen=True)
class Job:
    """One thing the comparison times."""

    key: str
    label: str
    kind: str
    """``limit``, ``peer`` or ``markit``."""
    command: Callable[[Context], Command]
    needs: str = ""
    """``tma`` or a markit command that may not exist yet; the job is skipped without it."""
    slow: bool = False
    """Run in the first round only (unless ``--repeat-slow``): deflating at ~30 MB/s."""
    moves_data: bool = True
    """Its rate is the checkpoint's bytes over its wall (False for inspect and listings)."""


def _markit_create(*extra: str, name: str = "bench.mar") -> Callable[[Context], Command]:
    def command(c: Context) -> Command:
        out = c.out / name
        return Command([*MARKIT, "create", *c.ckpt.archiver_flags(), *extra, "-o", str(out), "-q", "-f"],
                       env=c.env, output=out)
    return command


def _markit_pipe(c: Context) -> Command:
    out = c.out / "bench.mar"
    return Command([*MARKIT, "create", *c.ckpt.archiver_flags(), "-o", "-", "-q"], pipe_to=["cat"], stdout=out,
                   env=c.env, output=out)


def _tma(fmt: str) -> Callable[[Context], Command]:
    def command(c: Context) -> Command:
        assert c.tma is not None
        suffix = ".tar.gz" if fmt == "tgz" else ".mar"
        return Command([str(c.tma / "torch-model-archiver"), *c.ckpt.archiver_flags(), "--export-path", str(c.out),
                        "--archive-format", fmt, "-f"], env=c.env, cwd=c.out, output=c.out / f"bench{suffix}")
    return command


def _simple(argv: Callable[[Context], list[str]], output: str | None = None) -> Callable[[Context], Command]:
    def command(c: Context) -> Command:
        return Command(argv(c), env=c.env, output=c.out / output if output else None)
    return command


def _files(c: Context) -> list[str]:
    return [str(f) for f in c.ckpt.files]


def _tar(flags: str, name: str) -> Callable[[Context], list[str]]:
    return lambda c: ["tar", flags, str(c.out / name), "-C", str(c.ckpt.folder.parent), c.ckpt.folder.name]


JOBS: tuple[Job, ...] = (
    Job("cat", "cat > /dev/null", "limit", _simple(lambda c: ["cat", *_files(c)])),
    Job("cp", "cp -r", "limit", _simple(lambda c: ["cp", "-r", str(c.ckpt.folder), str(c.out / "copy")], "copy")),
    Job("sha256", "SHA-256 pass (hashlib, 1 MiB)", "limit", _simple(lambda c: [PY, "-c", SHA256_PASS, *_files(c)])),
    Job("tar", "tar -cf", "peer", _simple(_tar("-cf", "bench.tar"), "bench.tar")),
    Job("tar-gz", "tar -czf", "peer", _simple(_tar("-czf", "bench.tar.gz"), "bench.tar.gz"), slow=True),
    Job("zipstream", "zipstream-ng stored", "peer",
        _simple(lambda c: [PY, "-c", ZIPSTREAM_STORED, str(c.ckpt.folder), str(c.out / "zs.zip")], "zs.zip")),
    Job("create", "markit create (default, auto)", "markit", _markit_create()),
    Job("create-pipe", "markit create -o - | cat", "markit", _markit_pipe),
    Job("create-store", "markit create zip-store", "markit", _markit_create("--archive-format", "zip-store")),
    Job("create-tgz", "markit create tgz", "markit", _markit_create("--archive-format", "tgz", name="bench.tar.gz")),
    Job("create-deflate", "markit create --compression deflate", "markit", _markit_create("--compression", "deflate")),
    Job("tma-default", "torch-model-archiver default", "peer", _tma("default"), needs="tma", slow=True),
    Job("tma-store", "torch-model-archiver zip-store", "peer", _tma("zip-store"), needs="tma"),
    Job("tma-tgz", "torch-model-archiver tgz", "peer", _tma("tgz"), needs="tma", slow=True),
    Job("inspect", "markit inspect", "markit", _simple(lambda c: [*MARKIT, "inspect", str(c.ref)]), needs="inspect",
        moves_data=False),
    Job("inspect-tiny", "markit inspect (tiny .mar)", "markit", _simple(lambda c: [*MARKIT, "inspect", str(c.tiny)]),
        needs="inspect", moves_data=False),
    Job("python-manifest", "python -c: zipfile, print manifest", "limit",
        _simple(lambda c: [PY, "-c", BARE_MANIFEST, str(c.ref)]), moves_data=False),
    Job("unzip-l", "unzip -l", "peer", _simple(lambda c: ["unzip", "-l", str(c.ref)]), moves_data=False),
    Job("verify", "markit verify", "markit", _simple(lambda c: [*MARKIT, "verify", str(c.ref)]), needs="verify"),
    Job("unzip-t", "unzip -t", "peer", _simple(lambda c: ["unzip", "-t", str(c.ref)])),
    Job("unpack", "markit unpack", "markit",
        _simple(lambda c: c.cli.unpack(c.ref, c.out / "unpacked"), "unpacked"), needs="unpack"),
)
