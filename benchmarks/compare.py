"""markit against its peers and the machine's limit: ``python benchmarks/compare.py --size-gib 2``.

Builds a synthetic checkpoint per case (random bytes; float32-like weights), page-caches it, then
runs every job once per round, in an order rotated from round to round, and reports median walls,
ratios to the machine's limit and to the peers, peak RSS and peak extra disk, and the issue's
targets met or missed (and by how much). Writes ``docs/benchmarks.md``, ``.png`` and ``.json``
(``docs/benchmarks-8gib.*`` at 8 GiB).
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

ROOT = Path(__file__).resolve().parent.parent
if sys.path and Path(sys.path[0]).resolve() == ROOT / "benchmarks":
    sys.path[0] = str(ROOT)  # run as a script: import the benchmarks package, not its modules as top-level names
elif str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.checkpoint import CASES, Checkpoint, make_checkpoint, sample_ratio
from benchmarks.jobs import JOBS, MARKIT, Cli, Context, Job, discover_cli
from benchmarks.measure import Sample, prefault, remove, run, wait_for_quiet
from benchmarks.profiling import Imports, Profile, import_times, profile_command
from benchmarks.render import PROFILED, Run, markdown, text_table, text_verdicts
from benchmarks.report import Summary, Verdict, limit_of, verdicts

GIB = 1 << 30
NOISY = 0.25  # cores others kept busy during a sample, above which the sample is taken again
RETAKE_UNDER = 30.0  # s: only jobs shorter than this are retaken (a deflating peer takes minutes)
RETAKE_FROM = 0.5  # s: below this, 10 ms CPU-accounting ticks make the others' load meaningless
SHORT = 1.0  # s: a job this quick is taken SHORT_TAKES times per round and its median take kept
SHORT_TAKES = 5
PREFAULT = 2.25  # x the checkpoint: what a writing job may put in the page cache (tma: a temporary copy + output)
WARM_UP = ("cp", "create")  # run once per case before the first round, untimed: the first writes after
# making the checkpoint ran up to 5x slower in the first round on this machine


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--size-gib", type=float, default=2.0, help="size of model.bin in GiB (default 2)")
    p.add_argument("--cases", default=",".join(CASES), help="comma list of: random, float32 (default both)")
    p.add_argument("--repeat", type=int, default=3, help="rounds; each job runs once per round (default 3)")
    p.add_argument("--repeat-slow", action="store_true", help="run the deflating peers every round too")
    p.add_argument("--work", help="folder for the checkpoint and outputs (default: the temp folder); needs"
                                  " ~3x size per case free")
    p.add_argument("--skip-tma", action="store_true", help="leave torch-model-archiver out")
    p.add_argument("--only", help="comma list of job keys to run (cp and sha256 are always run: they are the limit)")
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
    return args


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


def prepare(work: Path, case: str, size: int) -> tuple[Checkpoint, float]:
    started = time.perf_counter()
    ckpt = make_checkpoint(work, case, size)
    ratio = sample_ratio(ckpt.weights)
    say(f"{case}: wrote {ckpt.total_bytes / GIB:.2f} GiB in {time.perf_counter() - started:.1f} s;"
        f" zlib-6 ratio on an 8 MiB sample: {ratio:.3f}")
    os.sync()  # write the new checkpoint back now, not during the first timed jobs
    return ckpt, ratio


def warm(ctx: Context) -> None:
    """Read the inputs into the page cache again: other users (and DAMON reclaim) evict it between jobs."""
    files = [*ctx.ckpt.files, *(f for f in (ctx.ref, ctx.tiny) if f.exists())]
    subprocess.run(["cat", *map(str, files)], stdout=subprocess.DEVNULL, check=True)


def references(work: Path, ckpt: Checkpoint, env: dict[str, str]) -> tuple[Path, Path]:
    """markit's default .mar of *ckpt* (what inspect, verify, unpack and unzip read) and a tiny one."""
    folder = work / f"ref-{ckpt.kind}"
    folder.mkdir(exist_ok=True)
    ref, tiny = folder / "bench.mar", folder / "tiny.mar"
    for argv in ([*MARKIT, "create", *ckpt.archiver_flags(), "-o", str(ref), "-q", "-f"],
                 [*MARKIT, "create", "--model-name", "tiny", "--handler", str(ckpt.small[0]), "-o", str(tiny), "-q",
                  "-f"]):
        done = subprocess.run(argv, check=False, env={**os.environ, **env}, capture_output=True, text=True)
        if done.returncode != 0:
            say(f"warning: the reference archive failed ({done.stderr.strip()[:300]}); jobs that read it will fail")
    os.sync()
    return ref, tiny


def wanted(args: argparse.Namespace, cli: Cli, tma: Path | None) -> tuple[list[Job], dict[str, str]]:
    only = set(args.only.split(",")) | {"cp", "sha256"} if args.only else None
    jobs, skipped = [], {}
    for job in JOBS:
        if only is not None and job.key not in only:
            continue
        if job.needs == "tma" and tma is None:
            skipped[job.key] = "skipped (--skip-tma)"
        elif job.needs and job.needs != "tma" and job.needs not in cli.commands:
            skipped[job.key] = f"markit {job.needs}: the command does not exist yet"
        else:
            jobs.append(job)
    return jobs, skipped


def one_job(job: Job, ctx: Context, work: Path, args: argparse.Namespace) -> Sample:
    shutil.rmtree(ctx.out, ignore_errors=True)
    ctx.out.mkdir()
    warm(ctx)
    wait_for_quiet(args.quiet_wait)
    command = job.command(ctx)
    if command.output is not None and not args.no_prefault:
        prefault(int(PREFAULT * ctx.ckpt.total_bytes))
    try:
        sample = run(command, work)
    finally:
        remove(command.output)
        shutil.rmtree(ctx.out, ignore_errors=True)
        shutil.rmtree(ctx.tmp, ignore_errors=True)
        ctx.tmp.mkdir()
        os.sync()  # the next job starts with no write-back of this one's output pending
    return sample


def rounds(args: argparse.Namespace, jobs: list[Job], contexts: dict[str, Context], work: Path,
           ) -> dict[str, dict[str, dict[int, Sample]]]:
    samples: dict[str, dict[str, dict[int, Sample]]] = {case: {} for case in contexts}
    for ctx in contexts.values():
        for job in (j for j in jobs if j.key in WARM_UP):
            say(f"warm-up (not timed): {ctx.ckpt.kind} {job.label}")
            one_job(job, ctx, work, args)
    for r in range(args.repeat):
        todo = [j for j in jobs if r == 0 or not j.slow or args.repeat_slow]
        for c, (case, ctx) in enumerate(contexts.items()):
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
        for key, label in PROFILED:
            if key not in by_key:
                continue
            ctx.out.mkdir(exist_ok=True)
            warm(ctx)
            command = by_key[key].command(ctx)
            if command.output is not None and not args.no_prefault:
                prefault(int(PREFAULT * ctx.ckpt.total_bytes))
            say(f"profiling {case} {label} ...")
            found[(case, key)] = profile_command(label + (" (to /dev/null)" if key == "create-pipe" else ""),
                                                 command.argv, {**command.env}, ctx.out)
            remove(command.output)
            shutil.rmtree(ctx.out, ignore_errors=True)
    first = next(iter(contexts.values()))
    argv = [*MARKIT, "inspect", str(first.ref)] if "inspect" in first.cli.commands else [*MARKIT, "--version"]
    label = " ".join(["markit", *argv[3:4]]) + (" ARCHIVE" if "inspect" in argv else "")
    return found, import_times(label, argv, first.env)


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


def chart(summaries: list[Summary], found: list[Verdict], args: argparse.Namespace, png: Path) -> None:
    python = plot_python()
    if python is None:
        return
    missed = {(v.case, v.key) for v in found if v.status == "MISS"}
    bounds: dict[tuple[str, str], float] = {}
    for v in found:
        if v.bound is not None:
            bounds[(v.case, v.key)] = min(v.bound, bounds.get((v.case, v.key), v.bound))
    cases = []
    for s in summaries:
        bars = [{"label": j.label, "kind": j.kind, "wall": s.wall(j.key), "miss": (s.case, j.key) in missed,
                 "bound": bounds.get((s.case, j.key))} for j in JOBS if s.wall(j.key) is not None]
        limit = s.wall(limit_of("create") or "") or 0.0
        cases.append({"name": f"{s.case}: {s.size / GIB:.2f} GiB", "limit": limit,
                      "limit_label": "max(cp -r, SHA-256)", "bars": bars})
    figures = {"title": f"markit vs its peers and the machine's limit: median wall of {args.repeat} round(s)",
               "cases": cases}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(figures, f)
    try:
        subprocess.run([python, str(ROOT / "benchmarks" / "chart.py"), f.name, str(png)], check=True)
        say(f"wrote {png}")
    except subprocess.CalledProcessError:
        say("the chart failed; see above")
    finally:
        os.unlink(f.name)


def report(args: argparse.Namespace, run_info: Run, summaries: list[Summary],
           found: dict[tuple[str, str], Profile | None], imports: Imports | None) -> None:
    checked = [v for s in summaries for v in verdicts(s)]
    for s in summaries:
        say("\n" + text_table(s, run_info.skipped))
    say("\n" + text_verdicts(checked))
    if args.no_write:
        return
    out = report_path(args)
    out.write_text(markdown(run_info, summaries, checked, found, imports, out.with_suffix(".png").name))
    say(f"\nwrote {out}")
    chart(summaries, checked, args, out.with_suffix(".png"))


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


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    size = int(args.size_gib * GIB)
    base = Path(args.work) if args.work else Path(tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="markit-bench-", dir=base))
    say(f"work folder: {work}")
    try:
        byte_compile()
        cli = discover_cli()
        say(f"markit commands found: {', '.join(sorted(cli.commands))}")
        tma = tma_bin(args.skip_tma)
        jobs, skipped = wanted(args, cli, tma)
        contexts, ratios = {}, {}
        (work / "tmp").mkdir()
        for case in args.cases:
            ckpt, ratios[case] = prepare(work, case, size)
            env = {"TMPDIR": str(work / "tmp")}
            ref, tiny = references(work, ckpt, env)
            contexts[case] = Context(ckpt, work / "out", work / "tmp", ref, tiny, tma, cli)
        command = " ".join(["python benchmarks/compare.py", *(argv if argv is not None else sys.argv[1:])])
        timed = {"command": command, "date": time.strftime("%Y-%m-%d %H:%M %Z"), "commit": commit()}
        rendered = ""
        if args.samples:
            timed, samples = load_samples(Path(args.samples))
            rendered = f"Timings from that run; this report (profiles taken anew) by `{command}` at `{commit()}`."
        else:
            samples = rounds(args, jobs, contexts, work)
        found, imports = ({}, None) if args.no_profile else profiles(contexts, jobs, args)
        summaries = [Summary(case, contexts[case].ckpt.total_bytes, samples[case]) for case in contexts]
        if not args.no_write or args.json:
            by_case = {case: {k: {r: s.__dict__ for r, s in v.items()} for k, v in by_job.items()}
                       for case, by_job in samples.items()}
            dump = Path(args.json or report_path(args).with_suffix(".json"))
            dump.write_text(json.dumps({"timed": timed, "samples": by_case}, indent=1))
        run_info = Run(timed["command"], timed["date"], machine(), platform.python_version(), timed["commit"],
                       args.size_gib, args.repeat, ratios, skipped, rendered)
        report(args, run_info, summaries, found, imports)
    finally:
        if args.keep:
            say(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
