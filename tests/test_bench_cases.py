"""The comparison harness's new cases, built small: the trees, the shards, and the commands their jobs run.

Nothing here is timed; ``benchmarks/compare.py`` does that. These keep the harness working in CI.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from benchmarks.checkpoint import make_sharded, make_tree, scale_case
from benchmarks.compare import case_names, parse, wanted
from benchmarks.jobs import JOBS, Cli, Context, jobs_for
from benchmarks.measure import DiskWatch, run
from benchmarks.report import needed


def _context(tmp_path: Path, case: str, count: int = 7) -> Context:
    ckpt = make_tree(tmp_path, case, count, per_folder=3)
    for name in ("out", "tmp", "keep"):
        (tmp_path / name).mkdir(exist_ok=True)
    return Context(ckpt, tmp_path / "out", tmp_path / "tmp", tmp_path / "ref.mar", tmp_path / "tiny.mar", None,
                   Cli(frozenset({"create", "inspect", "verify", "unpack"}), "--dest", True), tmp_path / "ref.tar",
                   tmp_path / "keep")


def test_a_tree_is_seeded_files_of_4_kib_in_folders(tmp_path: Path) -> None:
    ckpt = make_tree(tmp_path / "a", "many-files", 7, per_folder=3)
    files = sorted(p.relative_to(ckpt.folder).as_posix() for p in ckpt.folder.rglob("*") if p.is_file())
    assert files == ["d000/f000000.dat", "d000/f000001.dat", "d000/f000002.dat", "d001/f000003.dat",
                     "d001/f000004.dat", "d001/f000005.dat", "d002/f000006.dat", "handler.py"]
    assert {(ckpt.folder / f).stat().st_size for f in files[:-1]} == {4096}
    assert ckpt.file_count == 8 and ckpt.total_bytes == 7 * 4096 + ckpt.handler.stat().st_size
    again = make_tree(tmp_path / "b", "many-files", 7, per_folder=3)
    assert (again.folder / files[4]).read_bytes() == (ckpt.folder / files[4]).read_bytes()  # deterministic
    assert ckpt.archiver_flags()[-4:] == ["--model-path", str(ckpt.folder), "--handler", "handler:handle"]
    assert ckpt.reader_flags() == []


def test_shards_split_the_size(tmp_path: Path) -> None:
    ckpt = make_sharded(tmp_path, 16 * 1024)
    shards = sorted(ckpt.folder.glob("*.safetensors"))
    assert [p.name for p in shards][:2] == ["model-00001-of-00016.safetensors", "model-00002-of-00016.safetensors"]
    assert len(shards) == 16 and {p.stat().st_size for p in shards} == {1024}
    assert len(ckpt.files) == 18 and ckpt.file_count == 18


def test_the_many_files_jobs_run_the_same_files(tmp_path: Path) -> None:
    ctx = _context(tmp_path, "many-files")
    keys = [j.key for j in jobs_for("many-files", JOBS)]
    assert keys == ["cp", "sha256", "tar-gz", "zip-store", "zip", "create", "create-store", "create-tgz", "inspect",
                    "python-list", "verify", "unzip-tq", "unpack", "unzip-x", "tar-x"]
    by = {j.key: j.command(ctx) for j in jobs_for("many-files", JOBS)}
    assert by["zip"].argv == ["zip", "-qr", str(ctx.out / "bench.zip"), "."] and by["zip"].cwd == ctx.ckpt.folder
    assert by["tar-x"].argv == ["tar", "-xf", str(ctx.ref_tar), "-C", str(ctx.out)]
    assert by["tar-x"].output == ctx.out / ctx.ckpt.folder.name
    assert by["unpack"].argv[-5:] == ["unpack", str(ctx.ref), "--dest", str(ctx.out / "unpacked"), "-q"]
    assert by["sha256"].argv[-1] == str(ctx.ckpt.folder)  # a tree: the script walks the folder


def test_100000_files_raise_the_bomb_limit(tmp_path: Path) -> None:
    ctx = _context(tmp_path, scale_case(100_000), count=1)
    big = dataclasses.replace(ctx.ckpt, file_count=100_001)
    ctx = Context(big, ctx.out, ctx.tmp, ctx.ref, ctx.tiny, None, ctx.cli, ctx.ref_tar, ctx.keep)
    by = {j.key: j.command(ctx) for j in jobs_for(big.kind, JOBS)}
    assert set(by) == {"tar", "zip", "create", "verify", "unzip-tq", "unpack", "unzip-x", "tar-x"}
    for key in ("verify", "unpack"):
        assert by[key].argv[-2:] == ["--max-entries", "200006"]


def test_overwrite_keeps_its_output_and_unpack_has_a_twin_not_prefaulted(tmp_path: Path) -> None:
    ctx = _context(tmp_path, "many-files")
    jobs = {j.key: j for j in JOBS}
    overwrite = jobs["create-overwrite"].command(ctx)
    assert overwrite.keep and overwrite.output == ctx.keep / "bench.mar"  # type: ignore[operator]
    assert "-f" in overwrite.argv
    assert not jobs["unpack-noprefault"].prefault and not jobs["cp-noprefault"].prefault
    assert jobs["unpack"].prefault


def test_only_brings_what_the_targets_compare_with() -> None:
    assert {"create", "cp", "sha256"} <= needed({"create-overwrite"})
    assert {"cp-noprefault", "sha256"} <= needed({"unpack-noprefault"})
    assert {"sha256-2", "unzip-tq", "sha256", "unzip-t"} <= needed({"verify"})
    assert {"zip", "tar", "unzip-x", "tar-x"} <= needed({"create", "unpack"})
    args = parse(["--only", "create-overwrite", "--skip-tma"])
    jobs, _ = wanted(args, Cli(frozenset({"create", "verify", "unpack", "inspect"})), None)
    assert {j.key for j in jobs} >= {"create-overwrite", "create", "cp", "sha256"}


def test_cases_and_scale_counts() -> None:
    args = parse(["--cases", "sharded,scaling", "--scale-counts", "1000,10"])
    assert case_names(args) == ["sharded", "scale-10", "scale-1000"]
    assert case_names(parse([])) == ["random", "float32", "many-files", "sharded", "scale-10", "scale-1000",
                                     "scale-10000", "scale-100000"]
    assert isinstance(parse(["--many-files", "200"]), argparse.Namespace)


def test_disk_is_watched_where_jobs_write_only(tmp_path: Path) -> None:
    ctx = _context(tmp_path, "many-files")
    watch = DiskWatch([ctx.out, ctx.tmp])
    assert watch.baseline == 0  # the tree is not counted
    command = JOBS[[j.key for j in JOBS].index("cp")].command(ctx)
    sample = run(command, [ctx.out, ctx.tmp])
    assert sample.ok and sample.output_bytes == ctx.ckpt.total_bytes and sample.disk >= ctx.ckpt.total_bytes
