"""markit against its peers and the machine's limit: ``python benchmarks/compare.py --size-gib 2``.

Builds a synthetic checkpoint per case (one big file of random bytes or float32-like weights; 20,000
files of 4 KiB; 16 shards; trees of 10 to 100,000 files for the scaling sweep), page-caches it, then
runs every job of the case once per round, in an order rotated from round to round, and reports
median walls, ratios to the machine's limit and to the peers, peak RSS and peak extra disk, the
scaling slopes, and the issue's targets met or missed (and by how much). Writes
``docs/benchmarks.md``, ``.png``, ``-scaling.png`` and ``.json`` (``docs/benchmarks-8gib.*`` at 8 GiB).
Never gate CI on these times: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if sys.path and Path(sys.path[0]).resolve() == ROOT / "benchmarks":
    sys.path[0] = str(ROOT)  # run as a script: import the benchmarks package, not its modules as top-level names
elif str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.checkpoint import (
    BIG,
    CASES,
    Checkpoint,
    family,
    make_checkpoint,
    make_sharded,
    make_tree,
    sample_ratio,
    scale_case,
    scale_count,
)
from benchmarks.jobs import JOBS, MARKIT, Cli, Context, Job, discover_cli, jobs_for, tool_missing
from benchmarks.measure import Sample, prefault, remove, run, wait_for_quiet
from benchmarks.profiling import Imports, Profile, import_times, profile_command
from benchmarks.render import Run, markdown, profiled, text_scaling, text_table, text_verdicts
from benchmarks.report import SCALE_OPS, Scaling, Summary, Verdict, label, limit_of, needed, scaling_verdicts, verdicts

GIB = 1 << 30
NOISY = 0.25  # cores others kept busy during a sample, above which the sample is taken again
RETAKE_UNDER = 30.0  # s: only jobs shorter than this are retaken (a deflating peer takes minutes)
RETAKE_FROM = 0.5  # s: below this, 10 ms CPU-accounting ticks make the others' load meaningless
SHORT = 1.0  # s: a job this quick is taken SHORT_TAKES times per round and its median take kept
SHORT_TAKES = 5
PREFAULT = 2.25  # x the checkpoint: what a writing job may put in the page cache (tma: a temporary copy + output)
WARM_UP = ("cp", "create", "create-overwrite")  # run once per case before the first round, untimed: the first
# writes after making the checkpoint ran up to 5x slower in the first round on this machine (and create-overwrite
# needs an archive to overwrite)
SETTLE = 3.0  # s of rest before a job that is not pre-faulted: the previous job's freed pages go back to the host
MANY_FILES = 20_000  # the many-files case: 20,000 files of 4 KiB in 40 folders
SCALE_COUNTS = (10, 1_000, 10_000, 100_000)  # the scaling sweep's file counts


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--size-gib", type=float, default=2.0, help="size of model.bin in GiB (default 2)")
    p.add_argument("--cases", default=",".join(CASES),
                   help=f"comma list of: {', '.join(CASES)} (default all; scaling: one case per --scale-counts)")
    p.add_argument("--many-files", type=int, default=MANY_FILES,
                   help=f"files of 4 KiB in the many-files case, 500 to a folder (default {MANY_FILES:,})")
    p.add_argument("--scale-counts", default=",".join(map(str, SCALE_COUNTS)),
                   help="comma list of the scaling sweep's file counts (default 10,1000,10000,100000)")
    p.add_argument("--repeat", type=int, default=3, help="rounds; each job runs once per round (default 3)")
    p.add_argument("--repeat-slow", action="store_true", help="run the deflating peers every round too")
    p.add_argument("--work", help="folder for the checkpoints and outputs (default: the temp folder); needs"
                                  " ~14x --size-gib free with every case (a one-file case: its checkpoint, the"
                                  " reference archive, the kept archive create -f overwrites and the output)")
    p.add_argument("--skip-tma", action="store_true", help="leave torch-model-archiver out")
    p.add_argument("--only", help="comma list of job keys to run; cp and sha256, and whatever the chosen jobs'"
                                  " targets compare them with, run too (see benchmarks/jobs.py for the keys)")
    p.add_argument("--quiet-wait", type=float, default=60.0,
                   help="before each job, wait up to this many seconds for the machine to be idle (default 60)")
    p.add_argument("--retakes", type=int, default=2,
                   help=f"times a sample is taken again when others kept over {NOISY} cores busy (default 2)")
    p.add_argument("--no-prefault", action="store_true",
                   help="do not touch and free memory before each writing job (see measure.prefault)")
    p.add_argument("--no-profile", action="store_true", help="skip the cProfile / importtime runs")
    p.add_argument("--out", help="report path; the chart goes beside it as .png (default docs/benchmarks.md at 2 GiB,"
                                 " docs/benchmarks-<size>gib.md at any other size)")
    p.add_argument("--no-write", action="store_true", help="print only: write no report and no chart")
    p.add_argument("--no-chart", action="store_true", help="write the report and samples but draw no chart")
    p.add_argument("--json", help="where to write every sample and how they were taken (default: the report's"
                                  " path with .json; --samples reads such a file)")
    p.add_argument("--samples", help="take the timings from an earlier run's --json instead of timing again;"
                                     " profiles are taken anew and the report says so")
    p.add_argument("--keep", action="store_true", help="keep the work folder")
    args = p.parse_args(argv)
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = set(args.cases) - set(CASES)
    if unknown:
        p.error(f"--cases: unknown {', '.join(sorted(unknown))}; expected {', '.join(CASES)}")
    try:
        args.scale_counts = sorted({int(n) for n in args.scale_counts.split(",") if n.strip()})
    except ValueError:
        p.error("--scale-counts: a comma list of whole numbers")
    if any(n < 1 for n in args.scale_counts) or args.many_files < 1:
        p.error("--scale-counts and --many-files: at least 1 file")
    return args


def case_names(args: argparse.Namespace) -> list[str]:
    """The cases to run, with ``scaling`` spelled out as one ``scale-N`` case per file count."""
    out: list[str] = []
    for case in args.cases:
        out += [scale_case(n) for n in args.scale_counts] if case == "scaling" else [case]
    return out


def say(message: str) -> None:
    print(message, flush=True)


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem = next(int(x.split()[1]) for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal"))
        ram = f"{mem / (1 << 20):.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        ram = "RAM unknown"
    return f"{os.cpu_count()} × {model}, {ram}, {platform.system()} {platform.release()}"


def commit() -> str:
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "markit"],
                               check=False, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" + uncommitted changes" if dirty else "")


def byte_compile() -> None:
    """Compile markit's modules to ``__pycache__``, as ``pip install`` does for an installed package.

    An editable install under ``PYTHONDONTWRITEBYTECODE`` (this machine sets it) would otherwise compile
    every module from source on every run: +15-20 ms on each command, a third of ``inspect``'s budget.
    """
    if not compileall.compile_dir(str(ROOT / "markit"), quiet=1):
        say("warning: markit's modules did not all compile; start-up times include compiling them")


def tma_bin(skip: bool) -> Path | None:
    if skip:
        return None
    from tests.support.venvs import ensure_venv

    say("torch-model-archiver: using (or installing, once) its virtualenv ...")
    return ensure_venv("tma")


def prepare(work: Path, case: str, args: argparse.Namespace) -> tuple[Checkpoint, float | None]:
    """Write *case*'s checkpoint; for the one-file cases, also the zlib ratio of its weights."""
    started = time.perf_counter()
    size = int(args.size_gib * GIB)
    fam = family(case)
    if fam == "big":
        ckpt = make_checkpoint(work, case, size)
    elif fam == "many":
        ckpt = make_tree(work, case, args.many_files)
    elif fam == "sharded":
        ckpt = make_sharded(work, size)
    else:
        ckpt = make_tree(work, case, scale_count(case))
    ratio = sample_ratio(ckpt.weights) if ckpt.weights is not None else None
    say(f"{case}: wrote {ckpt.file_count:,} file(s), {ckpt.total_bytes / GIB:.2f} GiB, in"
        f" {time.perf_counter() - started:.1f} s" + (f"; zlib-6 ratio on an 8 MiB sample: {ratio:.3f}"
                                                      if ratio is not None else ""))
    os.sync()  # write the new checkpoint back now, not during the first timed jobs
    return ckpt, ratio


def warm(ctx: Context) -> None:
    """Read the inputs into the page cache again: other users (and DAMON reclaim) evict it between jobs."""
    refs = [str(f) for f in (ctx.ref, ctx.tiny, ctx.ref_tar) if f is not None and f.exists()]
    if ctx.ckpt.files:
        subprocess.run(["cat", *map(str, ctx.ckpt.files), *refs], stdout=subprocess.DEVNULL, check=True)
        return
    # a tree: too many names for one command line (and the walk warms the inode and dentry caches too)
    subprocess.run(["find", str(ctx.ckpt.folder), "-type", "f", "-exec", "cat", "{}", "+"], stdout=subprocess.DEVNULL,
                   check=True)
    if refs:
        subprocess.run(["cat", *refs], stdout=subprocess.DEVNULL, check=True)


def references(work: Path, ckpt: Checkpoint, env: dict[str, str]) -> tuple[Path, Path, Path | None]:
    """markit's default .mar of *ckpt* (what inspect, verify, unpack and unzip read), a tiny one (the one-file
    cases), and a ``tar -cf`` of the folder (the trees: what ``tar -xf`` unpacks)."""
    folder = work / f"ref-{ckpt.kind}"
    folder.mkdir(exist_ok=True)
    ref, tiny = folder / "bench.mar", folder / "tiny.mar"
    fam = family(ckpt.kind)
    tar = folder / "bench.tar" if fam in ("many", "scale") else None
    commands = [[*MARKIT, "create", *ckpt.archiver_flags(), "-o", str(ref), "-q", "-f"]]
    if fam == "big":
        commands.append([*MARKIT, "create", "--model-name", "tiny", "--handler", str(ckpt.handler), "-o", str(tiny),
                         "-q", "-f"])
    if tar is not None:
        commands.append(["tar", "-cf", str(tar), "-C", str(ckpt.folder.parent), ckpt.folder.name])
    for argv in commands:
        done = subprocess.run(argv, check=False, env={**os.environ, **env}, capture_output=True, text=True)
        if done.returncode != 0:
            say(f"warning: a reference archive failed ({done.stderr.strip()[:300]}); jobs that read it will fail")
    os.sync()
    return ref, tiny, tar


def wanted(args: argparse.Namespace, cli: Cli, tma: Path | None) -> tuple[list[Job], dict[str, str]]:
    only = None
    if args.only:
        only = {k.strip() for k in args.only.split(",") if k.strip()}
        unknown = only - {j.key for j in JOBS}
        if unknown:
            raise SystemExit(f"--only: unknown job(s) {', '.join(sorted(unknown))}; see benchmarks/jobs.py")
        only |= {"cp", "sha256"} | needed(only)
    jobs, skipped = [], {}
    for job in JOBS:
        if only is not None and job.key not in only:
            continue
        if job.needs == "tma" and tma is None:
            skipped[job.key] = "skipped (--skip-tma)"
        elif job.needs and job.needs != "tma" and job.needs not in cli.commands:
            skipped[job.key] = f"markit {job.needs}: the command does not exist yet"
        elif tool_missing(job):
            skipped[job.key] = f"skipped: {job.tool} is not installed"
        else:
            jobs.append(job)
    return jobs, skipped


def one_job(job: Job, ctx: Context, work: Path, args: argparse.Namespace) -> Sample:
    shutil.rmtree(ctx.out, ignore_errors=True)
    ctx.out.mkdir()
    warm(ctx)
    wait_for_quiet(args.quiet_wait)
    command = job.command(ctx)
    if command.output is not None and not args.no_prefault and job.prefault:
        prefault(int(PREFAULT * ctx.ckpt.total_bytes))
    elif not job.prefault:
        time.sleep(SETTLE)
    try:
        sample = run(command, [p for p in (ctx.out, ctx.tmp, ctx.keep) if p is not None])
    finally:
        if not command.keep:
            remove(command.output)
        shutil.rmtree(ctx.out, ignore_errors=True)
        shutil.rmtree(ctx.tmp, ignore_errors=True)
        ctx.tmp.mkdir()
        os.sync()  # the next job starts with no write-back of this one's output pending
    return sample


def rounds(args: argparse.Namespace, jobs: list[Job], contexts: dict[str, Context], work: Path,
           ) -> dict[str, dict[str, dict[int, Sample]]]:
    samples: dict[str, dict[str, dict[int, Sample]]] = {case: {} for case in contexts}
    for case, ctx in contexts.items():
        for job in (j for j in jobs_for(case, jobs) if j.key in WARM_UP):
            say(f"warm-up (not timed): {ctx.ckpt.kind} {job.label}")
            one_job(job, ctx, work, args)
    for r in range(args.repeat):
        for c, (case, ctx) in enumerate(contexts.items()):
            todo = [j for j in jobs_for(case, jobs)
                    if r == 0 or not j.slow or family(case) != "big" or args.repeat_slow]
            if not todo:
                continue
            turn = (r * len(todo) // max(1, args.repeat) + c) % len(todo)
            for job in todo[turn:] + todo[:turn]:
                sample, takes = one_job(job, ctx, work, args), 1
                while sample.others > NOISY and RETAKE_FROM <= sample.wall < RETAKE_UNDER and takes <= args.retakes:
                    again, takes = one_job(job, ctx, work, args), takes + 1
                    if again.ok and again.others < sample.others:
                        sample = again
                if sample.ok and sample.wall < SHORT:
                    quick = [sample, *(one_job(job, ctx, work, args) for _ in range(SHORT_TAKES - 1))]
                    quick = sorted((q for q in quick if q.ok), key=lambda q: q.wall)
                    sample, takes = quick[len(quick) // 2], len(quick)
                samples[case].setdefault(job.key, {})[r] = sample
                state = (f"{sample.wall:8.2f} s  cpu {sample.cpu / sample.wall:4.2f}  rss {sample.rss >> 20:5d} MiB"
                         f"  disk {sample.disk / GIB:5.2f} GiB  others {sample.others:4.2f}"
                         + (f"  ({takes} takes)" if takes > 1 else "")
                         if sample.ok else f"FAILED {sample.error[:200]}")
                say(f"[round {r + 1}/{args.repeat}] {case:8} {job.label:38} {state}")
    return samples


def profiles(contexts: dict[str, Context], jobs: list[Job], args: argparse.Namespace,
             ) -> tuple[dict[tuple[str, str], Profile | None], Imports | None]:
    by_key = {j.key: j for j in jobs}
    found: dict[tuple[str, str], Profile | None] = {}
    for case, ctx in contexts.items():
        for key, name in profiled(case):
            if key not in by_key or not by_key[key].runs_in(case):
                continue
            ctx.out.mkdir(exist_ok=True)
            warm(ctx)
            command = by_key[key].command(ctx)
            if command.output is not None and not args.no_prefault:
                prefault(int(PREFAULT * ctx.ckpt.total_bytes))
            say(f"profiling {case} {name} ...")
            found[(case, key)] = profile_command(name + (" (to /dev/null)" if key == "create-pipe" else ""),
                                                 command.argv, {**command.env}, ctx.out)
            remove(command.output)
            shutil.rmtree(ctx.out, ignore_errors=True)
    if not contexts:
        return found, None
    first = next(iter(contexts.values()))
    argv = [*MARKIT, "inspect", str(first.ref)] if "inspect" in first.cli.commands else [*MARKIT, "--version"]
    name = " ".join(["markit", *argv[3:4]]) + (" ARCHIVE" if "inspect" in argv else "")
    return found, import_times(name, argv, first.env)


def plot_python() -> str | None:
    """A Python with matplotlib: this one, or a small virtualenv made once for the chart."""
    try:
        import matplotlib  # noqa: F401

        return sys.executable
    except ImportError:
        pass
    from tests.support.venvs import CACHE

    root = CACHE / "bench-plot"
    python = root / "bin" / "python"
    if not (root / ".markit-ready").exists():
        say(f"matplotlib is not installed (it is not a markit dependency); installing it into {root} for the chart")
        try:
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(root)], check=True)
            subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "matplotlib"],
                           check=True)
        except (OSError, subprocess.CalledProcessError) as error:
            say(f"could not install matplotlib ({error}); no chart")
            return None
        (root / ".markit-ready").write_text("matplotlib\n")
    return str(python)


def _draw(figures: dict[str, object], png: Path) -> None:
    python = plot_python()
    if python is None:
        return
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(figures, f)
    try:
        subprocess.run([python, str(ROOT / "benchmarks" / "chart.py"), f.name, str(png)], check=True)
        say(f"wrote {png}")
    except subprocess.CalledProcessError:
        say("the chart failed; see above")
    finally:
        os.unlink(f.name)


def bar_figures(summaries: list[Summary], found: list[Verdict], repeat: int) -> dict[str, object]:
    """chart.py's input for the cases other than the scaling sweep: a panel of bars per case."""
    missed = {(v.case, v.key) for v in found if v.status == "MISS"}
    bounds: dict[tuple[str, str], float] = {}
    for v in found:
        if v.bound is not None:
            bounds[(v.case, v.key)] = min(v.bound, bounds.get((v.case, v.key), v.bound))
    cases = []
    for s in summaries:
        if family(s.case) == "scale":
            continue
        bars = [{"label": j.label, "kind": j.kind, "wall": s.wall(j.key), "miss": (s.case, j.key) in missed,
                 "bound": bounds.get((s.case, j.key))} for j in jobs_for(s.case, JOBS) if s.wall(j.key) is not None]
        if not bars:
            continue
        limit_key = limit_of("create", s.case) or ""
        cases.append({"name": f"{s.case}: {s.size / GIB:.2f} GiB", "limit": s.wall(limit_key) or 0.0,
                      "limit_label": label(limit_key), "bars": bars})
    return {"title": f"markit vs its peers and the machine's limit: median wall of {repeat} round(s)",
            "cases": cases}


def scaling_figures(summaries: list[Summary], repeat: int) -> dict[str, object]:
    """chart.py's input for the scaling sweep: a panel per command, a line per job, wall against file count."""
    sweep = Scaling.of(summaries)
    panels = []
    for op, peers in SCALE_OPS:
        lines = []
        for key in (op, *peers):
            points = sweep.points(key)
            if not points:
                continue
            job = next(j for j in JOBS if j.key == key)
            slope = sweep.slope(key)
            ratio = sweep.slope_ratio(op, key) if key != op else None
            lines.append({"label": job.label, "kind": job.kind, "points": points,
                          "per_file": slope, "slope_ratio": ratio})
        if lines:
            panels.append({"name": f"markit {op}", "lines": lines})
    return {"title": f"wall against file count (files of 4 KiB): median of {repeat} round(s)", "scaling": panels}


def chart(summaries: list[Summary], found: list[Verdict], args: argparse.Namespace, png: Path) -> None:
    bars = bar_figures(summaries, found, args.repeat)
    if bars["cases"]:
        _draw(bars, png)
    scaling = scaling_figures(summaries, args.repeat)
    if scaling["scaling"]:
        _draw(scaling, scaling_png(png))


def scaling_png(png: Path) -> Path:
    return png.with_name(png.stem + "-scaling.png")


def report(args: argparse.Namespace, run_info: Run, summaries: list[Summary],
           found: dict[tuple[str, str], Profile | None], imports: Imports | None) -> None:
    cases = [s for s in summaries if family(s.case) != "scale"]
    checked = [v for s in cases for v in verdicts(s)] + scaling_verdicts(summaries)
    if args.only:  # a partial run: leave out the targets of the jobs not chosen rather than list them unmeasured
        chosen = {k.strip() for k in args.only.split(",")}
        checked = [v for v in checked if v.status != "n/a" or v.key in chosen]
    for s in cases:
        say("\n" + text_table(s, run_info.skipped))
    if Scaling.of(summaries).summaries:
        say("\n" + text_scaling(Scaling.of(summaries)))
    say("\n" + text_verdicts(checked))
    if args.no_write:
        return
    out = report_path(args)
    png = out.with_suffix(".png")
    has_scaling = bool(Scaling.of(summaries).summaries)
    out.write_text(markdown(run_info, summaries, checked, found, imports, "" if args.no_chart else png.name,
                            scaling_png(png).name if has_scaling and not args.no_chart else ""))
    say(f"\nwrote {out}")
    if not args.no_chart:
        chart(summaries, checked, args, png)


def report_path(args: argparse.Namespace) -> Path:
    """docs/benchmarks.md at 2 GiB, docs/benchmarks-<size>gib.md at any other size, unless --out says."""
    if args.out:
        return Path(args.out)
    return ROOT / "docs" / ("benchmarks.md" if args.size_gib == 2 else f"benchmarks-{args.size_gib:g}gib.md")


def load_samples(path: Path) -> tuple[dict[str, str], dict[str, dict[str, dict[int, Sample]]]]:
    """How an earlier run was timed, and its samples, from its ``--json``."""
    data = json.loads(path.read_text())
    return data["timed"], {case: {key: {int(r): Sample(**fields) for r, fields in by_round.items()}
                                  for key, by_round in by_job.items()}
                           for case, by_job in data["samples"].items()}


def load_meta(path: Path) -> dict[str, Any]:
    """What else an earlier run's ``--json`` says: its cases (bytes, files, description, zlib ratio), the jobs it
    skipped and why, its rounds, size and machine. Empty for a file written before these were kept."""
    data = json.loads(path.read_text())
    return {k: v for k, v in data.items() if k not in ("timed", "samples")}


def older_cases(samples: dict[str, dict[str, dict[int, Sample]]], size_gib: float) -> dict[str, dict[str, Any]]:
    """What a ``--json`` written before the cases were kept in it says of its one-file cases: the size is that
    of ``cp -r``'s copy (the whole checkpoint). Cases it cannot tell are left out (their checkpoint is built)."""
    out = {}
    for case, by_job in samples.items():
        sizes = [s.output_bytes for s in by_job.get("cp", {}).values() if s.ok and s.output_bytes]
        if case in BIG and sizes:
            out[case] = {"bytes": max(sizes), "files": 6, "ratio": None,
                         "description": f"one `model.bin` of {size_gib:g} GiB plus a handler and four small text"
                                        " files (~0.5 MiB)"}
    return out


def scaling_description(cases: list[str]) -> str:
    counts = sorted(scale_count(c) for c in cases if family(c) == "scale")
    return (f"trees of {', '.join(f'{n:,}' for n in counts)} files of 4 KiB of random bytes, 500 to a folder, plus"
            " `handler.py` (one case each, `scale-N`; see *Scaling with the file count*)")


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    base = Path(args.work) if args.work else Path(tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="markit-bench-", dir=base))
    say(f"work folder: {work}")
    command = " ".join(["python benchmarks/compare.py", *(argv if argv is not None else sys.argv[1:])])
    timed = {"command": command, "date": time.strftime("%Y-%m-%d %H:%M %Z"), "commit": commit()}
    try:
        byte_compile()
        meta: dict[str, Any] = {}
        samples: dict[str, dict[str, dict[int, Sample]]] = {}
        rendered = ""
        if args.samples:
            timed, samples = load_samples(Path(args.samples))
            meta = load_meta(Path(args.samples))
            args.size_gib = meta.get("size_gib", args.size_gib)
            chosen = [c for c in samples if c in args.cases or (family(c) == "scale" and "scaling" in args.cases)]
            meta["cases"] = {**older_cases(samples, args.size_gib), **meta.get("cases", {})}
            known = meta["cases"]
            # checkpoints only for the profiles, or to learn the size of a case an older --json does not give
            build = [c for c in chosen if c not in known or (not args.no_profile and family(c) != "scale")]
            how = "no profiles" if args.no_profile else "profiles taken anew"
            rendered = f"Timings from that run; this report ({how}) by `{command}` at `{commit()}`."
        else:
            chosen = build = case_names(args)
        contexts: dict[str, Context] = {}
        info: dict[str, dict[str, Any]] = {c: meta["cases"][c] for c in chosen if c in meta.get("cases", {})}
        jobs: list[Job] = []
        skipped: dict[str, str] = meta.get("skipped", {})
        if build:
            cli = discover_cli()
            say(f"markit commands found: {', '.join(sorted(cli.commands))}")
            tma = None if args.samples else tma_bin(args.skip_tma or not set(build) & set(BIG))
            jobs, found_skipped = wanted(args, cli, tma)
            skipped = skipped if args.samples and "skipped" in meta else found_skipped
            (work / "tmp").mkdir()
            for case in build:
                ckpt, ratio = prepare(work, case, args)
                ref, tiny, ref_tar = references(work, ckpt, {"TMPDIR": str(work / "tmp")})
                keep = work / f"keep-{case}"
                keep.mkdir()
                contexts[case] = Context(ckpt, work / "out", work / "tmp", ref, tiny, tma, cli, ref_tar, keep)
                info.setdefault(case, {"bytes": ckpt.total_bytes, "files": ckpt.file_count,
                                       "description": ckpt.description, "ratio": ratio})
        if not args.samples:
            samples = rounds(args, jobs, contexts, work)
        wanted_profiles = {c: x for c, x in contexts.items() if family(c) != "scale"}
        found, imports = ({}, None) if args.no_profile else profiles(wanted_profiles, jobs, args)
        summaries = [Summary(case, info[case]["bytes"], samples.get(case, {})) for case in chosen]
        machine_line = meta.get("machine") or machine()
        python = meta.get("python") or platform.python_version()
        repeat = meta.get("repeat", args.repeat)
        if not args.no_write or args.json:
            by_case = {case: {k: {r: s.__dict__ for r, s in v.items()} for k, v in by_job.items()}
                       for case, by_job in samples.items()}
            dump = Path(args.json or report_path(args).with_suffix(".json"))
            dump.write_text(json.dumps({"timed": timed, "samples": by_case, "cases": info, "skipped": skipped,
                                        "repeat": repeat, "size_gib": args.size_gib, "machine": machine_line,
                                        "python": python}, indent=1))
        descriptions = {c: info[c]["description"] for c in chosen if family(c) != "scale"}
        if any(family(c) == "scale" for c in chosen):
            descriptions["scaling"] = scaling_description(chosen)
        ratios = {c: info[c]["ratio"] for c in chosen if info[c].get("ratio") is not None}
        run_info = Run(timed["command"], timed["date"], machine_line, python, timed["commit"],
                       args.size_gib, repeat, ratios, skipped, rendered, descriptions)
        args.repeat = repeat
        report(args, run_info, summaries, found, imports)
    finally:
        if args.keep:
            say(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
