"""The jobs the comparison times: markit's commands, the machine's limits, and the peers.

Each job turns a :class:`Context` (the checkpoint, an empty output folder, the reference
archive) into a :class:`~benchmarks.measure.Command`. ``kind`` says what it is in the report:
``limit`` (what the machine can do: cat, cp -r, one SHA-256 pass), ``peer`` (another tool doing
the same job) or ``markit``. ``families`` says which cases it runs in (``big``: random and float32;
``many``: many-files; ``sharded``; ``scale``: the scaling trees, see ``checkpoint.family``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks.checkpoint import Checkpoint, family
from benchmarks.measure import Command

__all__ = ["JOBS", "Cli", "Context", "Job", "discover_cli", "jobs_for", "tool_missing"]

PY = sys.executable
MARKIT = [PY, "-m", "markit"]

_WALK = """
import hashlib, os, sys
def files(paths):
    for p in paths:
        if not os.path.isdir(p):
            yield p
            continue
        for folder, subs, names in os.walk(p):
            subs.sort()
            yield from (os.path.join(folder, n) for n in sorted(names))
"""

SHA256_PASS = _WALK + """
buffer = bytearray(1 << 20)
view = memoryview(buffer)
for path in files(sys.argv[1:]):
    sha = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buffer):
            sha.update(view[:n])
    print(sha.hexdigest(), path)
"""

SHA256_TWO = _WALK + """
from concurrent.futures import ThreadPoolExecutor
def digest(path):
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    sha = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buffer):
            sha.update(view[:n])  # hashlib lets go of the GIL: the two threads hash on both cores
    return sha.hexdigest()
paths = list(files(sys.argv[1:]))
with ThreadPoolExecutor(2) as pool:
    for path, hexdigest in zip(paths, pool.map(digest, paths)):
        print(hexdigest, path)
"""
"""Both cores hashing side by side: two threads, each taking the next whole file (the sharded case's limit)."""

BARE_MANIFEST = (
    "import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read('MAR-INF/MANIFEST.json'))"
)

BARE_LIST = (
    "import sys, zipfile\n"
    "for i in zipfile.ZipFile(sys.argv[1]).infolist(): print(i.file_size, i.compress_size, i.CRC, i.filename)"
)
"""A bare listing of every entry (what ``markit inspect`` of a 20,000-file archive is held to, within 2x)."""

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
    ref_tar: Path | None = None
    """``tar -cf`` of the checkpoint folder (the trees), what ``tar -xf`` unpacks."""
    keep: Path | None = None
    """A folder whose outputs survive from round to round: ``create -f`` overwrites the last round's."""

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
    families: tuple[str, ...] = ("big",)
    """The cases it runs in, by family (``checkpoint.family``): big, many, sharded, scale."""
    prefault: bool = True
    """Touch and free memory before it when it writes (``measure.prefault``); False: its no-pre-faulting twin."""
    tool: str = ""
    """An outside program it needs (zip, unzip); the job is skipped without it."""

    def runs_in(self, case: str) -> bool:
        return family(case) in self.families


def jobs_for(case: str, jobs: tuple[Job, ...] | list[Job]) -> list[Job]:
    """The jobs of *jobs* that run in *case*, in their order."""
    return [j for j in jobs if j.runs_in(case)]


def _markit_create(*extra: str, name: str = "bench.mar") -> Callable[[Context], Command]:
    def command(c: Context) -> Command:
        out = c.out / name
        return Command([*MARKIT, "create", *c.ckpt.archiver_flags(), *extra, "-o", str(out), "-q", "-f"],
                       env=c.env, output=out)
    return command


def _markit_overwrite(c: Context) -> Command:
    """``create -f`` onto the archive the last run of this job left (made untimed before the first round)."""
    assert c.keep is not None
    out = c.keep / "bench.mar"
    return Command([*MARKIT, "create", *c.ckpt.archiver_flags(), "-o", str(out), "-q", "-f"], env=c.env, output=out,
                   keep=True)


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


def _inputs(c: Context) -> list[str]:
    """The files when there are few, else the folder (the hashing scripts walk it)."""
    return _files(c) if c.ckpt.files else [str(c.ckpt.folder)]


def _tar(flags: str, name: str) -> Callable[[Context], list[str]]:
    return lambda c: ["tar", flags, str(c.out / name), "-C", str(c.ckpt.folder.parent), c.ckpt.folder.name]


def _zip(flags: str) -> Callable[[Context], Command]:
    """``zip -qr[0] OUT .`` run in the checkpoint folder: the archive holds the same names markit's does."""
    def command(c: Context) -> Command:
        out = c.out / "bench.zip"
        return Command(["zip", flags, str(out), "."], env=c.env, cwd=c.ckpt.folder, output=out)
    return command


def _tar_x(c: Context) -> Command:
    assert c.ref_tar is not None
    return Command(["tar", "-xf", str(c.ref_tar), "-C", str(c.out)], env=c.env, output=c.out / c.ckpt.folder.name)


def _unpack(folder: str) -> Callable[[Context], Command]:
    def command(c: Context) -> Command:
        return Command([*c.cli.unpack(c.ref, c.out / folder), *c.ckpt.reader_flags()], env=c.env,
                       output=c.out / folder)
    return command


BIG, MANY, SHARDED, SCALE = "big", "many", "sharded", "scale"


JOBS: tuple[Job, ...] = (
    Job("cat", "cat > /dev/null", "limit", _simple(lambda c: ["cat", *_files(c)]), families=(BIG, SHARDED)),
    Job("cp", "cp -r", "limit", _simple(lambda c: ["cp", "-r", str(c.ckpt.folder), str(c.out / "copy")], "copy"),
        families=(BIG, MANY, SHARDED)),
    Job("cp-noprefault", "cp -r (not pre-faulted)", "limit",
        _simple(lambda c: ["cp", "-r", str(c.ckpt.folder), str(c.out / "copy")], "copy"), prefault=False),
    Job("sha256", "SHA-256 pass (hashlib, 1 MiB)", "limit", _simple(lambda c: [PY, "-c", SHA256_PASS, *_inputs(c)]),
        families=(BIG, MANY, SHARDED)),
    Job("sha256-2", "SHA-256 on 2 cores (2 threads)", "limit",
        _simple(lambda c: [PY, "-c", SHA256_TWO, *_inputs(c)]), families=(SHARDED,)),
    Job("tar", "tar -cf", "peer", _simple(_tar("-cf", "bench.tar"), "bench.tar"), families=(BIG, SCALE)),
    Job("tar-gz", "tar -czf", "peer", _simple(_tar("-czf", "bench.tar.gz"), "bench.tar.gz"), slow=True,
        families=(BIG, MANY)),
    Job("zipstream", "zipstream-ng stored", "peer",
        _simple(lambda c: [PY, "-c", ZIPSTREAM_STORED, str(c.ckpt.folder), str(c.out / "zs.zip")], "zs.zip")),
    Job("zip-store", "zip -qr0", "peer", _zip("-qr0"), families=(MANY,), tool="zip"),
    Job("zip", "zip -qr", "peer", _zip("-qr"), families=(MANY, SCALE), tool="zip"),
    Job("create", "markit create (default, auto)", "markit", _markit_create(), families=(BIG, MANY, SHARDED, SCALE)),
    Job("create-overwrite", "markit create -f over the last round's", "markit", _markit_overwrite),
    Job("create-pipe", "markit create -o - | cat", "markit", _markit_pipe),
    Job("create-store", "markit create zip-store", "markit", _markit_create("--archive-format", "zip-store"),
        families=(BIG, MANY)),
    Job("create-tgz", "markit create tgz", "markit", _markit_create("--archive-format", "tgz", name="bench.tar.gz"),
        families=(BIG, MANY)),
    Job("create-deflate", "markit create --compression deflate", "markit", _markit_create("--compression", "deflate")),
    Job("tma-default", "torch-model-archiver default", "peer", _tma("default"), needs="tma", slow=True),
    Job("tma-store", "torch-model-archiver zip-store", "peer", _tma("zip-store"), needs="tma"),
    Job("tma-tgz", "torch-model-archiver tgz", "peer", _tma("tgz"), needs="tma", slow=True),
    Job("inspect", "markit inspect", "markit", _simple(lambda c: [*MARKIT, "inspect", str(c.ref)]), needs="inspect",
        moves_data=False, families=(BIG, MANY)),
    Job("inspect-tiny", "markit inspect (tiny .mar)", "markit", _simple(lambda c: [*MARKIT, "inspect", str(c.tiny)]),
        needs="inspect", moves_data=False),
    Job("python-manifest", "python -c: zipfile, print manifest", "limit",
        _simple(lambda c: [PY, "-c", BARE_MANIFEST, str(c.ref)]), moves_data=False),
    Job("python-list", "python -c: zipfile, list every entry", "limit",
        _simple(lambda c: [PY, "-c", BARE_LIST, str(c.ref)]), moves_data=False, families=(MANY,)),
    Job("unzip-l", "unzip -l", "peer", _simple(lambda c: ["unzip", "-l", str(c.ref)]), moves_data=False),
    Job("verify", "markit verify", "markit",
        _simple(lambda c: [*MARKIT, "verify", str(c.ref), *c.ckpt.reader_flags()]), needs="verify",
        families=(BIG, MANY, SHARDED, SCALE)),
    Job("unzip-t", "unzip -t", "peer", _simple(lambda c: ["unzip", "-t", str(c.ref)])),
    Job("unzip-tq", "unzip -tq", "peer", _simple(lambda c: ["unzip", "-tq", str(c.ref)]), families=(MANY, SCALE),
        tool="unzip"),
    Job("unpack", "markit unpack", "markit", _unpack("unpacked"), needs="unpack", families=(BIG, MANY, SCALE)),
    Job("unpack-noprefault", "markit unpack (not pre-faulted)", "markit", _unpack("unpacked"), needs="unpack",
        prefault=False),
    Job("unzip-x", "unzip -q (extract)", "peer",
        _simple(lambda c: ["unzip", "-q", str(c.ref), "-d", str(c.out / "unzipped")], "unzipped"),
        families=(MANY, SCALE), tool="unzip"),
    Job("tar-x", "tar -xf (the same files)", "peer", _tar_x, families=(MANY, SCALE)),
)


def tool_missing(job: Job) -> bool:
    return bool(job.tool) and shutil.which(job.tool) is None
