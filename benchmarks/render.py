"""The comparison's results as text (stdout) and as ``docs/benchmarks.md``."""

from __future__ import annotations

from dataclasses import dataclass, field

from benchmarks.checkpoint import family
from benchmarks.jobs import JOBS, Job, jobs_for
from benchmarks.profiling import Imports, Profile
from benchmarks.report import (
    COMPOSITE,
    LIMIT_LABELS,
    PEERS,
    SCALE_OPS,
    Scaling,
    Summary,
    Verdict,
    human_bytes,
    human_rate,
    label,
    limit_of,
)

__all__ = ["PROFILED", "Row", "Run", "markdown", "profiled", "rows", "scaling_table", "text_table", "text_verdicts"]

PROFILED = (("create", "create default"), ("create-pipe", "create -o - | cat"), ("create-store", "create zip-store"),
            ("create-tgz", "create tgz"), ("create-deflate", "create --compression deflate"), ("inspect", "inspect"),
            ("verify", "verify"), ("unpack", "unpack"))
PROFILED_IN = {"big": ("create", "create-pipe", "create-tgz", "create-deflate", "verify", "unpack"),
               "many": ("create", "create-store", "create-tgz", "inspect", "verify", "unpack"),
               "sharded": ("create", "verify"), "scale": ()}
"""Which commands get a cProfile run, by family: the scaling sweep none (its table says enough)."""


def profiled(case: str) -> list[tuple[str, str]]:
    """(job key, label) of the commands profiled in *case*."""
    return [(key, name) for key, name in PROFILED if key in PROFILED_IN[family(case)]]


@dataclass(frozen=True)
class Run:
    """What the report describes besides the samples: the machine and the options."""

    command: str
    date: str
    machine: str
    python: str
    commit: str
    size_gib: float
    repeat: int
    ratios: dict[str, float]
    """zlib level-6 compressed size over original, per case, on an 8 MiB sample."""
    skipped: dict[str, str]
    """Job key -> why it did not run."""
    rendered: str = ""
    """When the timings come from an earlier run's ``--json``: how, and at which commit, this report was made."""
    cases: dict[str, str] = field(default_factory=dict)
    """Case -> what its checkpoint is (one line); the scaling sweep's cases under ``scaling``."""


@dataclass(frozen=True)
class Row:
    job: Job
    wall: str
    spread: str
    """min–max of the walls, when there are several."""
    runs: int
    rate: str
    vs_limit: str
    vs_peers: str
    cpu: str
    others: str
    rss: str
    disk: str
    output: str
    note: str


def _peers(s: Summary, key: str) -> str:
    parts = []
    for peer in PEERS.get(key, ()):
        speed = s.ratio(peer, key)
        if speed is not None:
            parts.append(f"{label(peer)} {speed:.2f}×")
    return "; ".join(parts)


def rows(s: Summary, skipped: dict[str, str]) -> list[Row]:
    out = []
    for job in jobs_for(s.case, JOBS):
        key = job.key
        if not s.samples.get(key) and key not in skipped:
            continue  # not selected (--only)
        wall, limit = s.wall(key), limit_of(key, s.case)
        ratio = s.ratio(key, limit) if limit else None
        cpu = s.cpu_share(key)
        note = skipped.get(key, "") or (s.error(key)[:120] if wall is None else "")
        walls = s.walls(key).values()
        spread = f"{min(walls):.2f}–{max(walls):.2f}" if len(walls) > 1 else ""
        out.append(Row(
            job, "—" if wall is None else f"{wall:.2f} s", spread, len(s.walls(key)),
            human_rate(s.size, wall) if job.moves_data else "—",
            "—" if ratio is None else f"{ratio:.2f}× {LIMIT_LABELS[limit]}",  # type: ignore[index]
            _peers(s, key), "—" if cpu is None else f"{cpu:.2f}",
            "—" if s.others(key) is None else f"{s.others(key):.2f}",
            human_bytes(s.worst(key, "rss")), human_bytes(s.worst(key, "disk")),
            human_bytes(s.output(key)) if s.output(key) else "—", note))
    return out


def text_table(s: Summary, skipped: dict[str, str]) -> str:
    head = (f"{'job':38} {'wall':>9} {'n':>2} {'rate':>10}  {'x limit':44} {'RSS':>10} {'disk':>10} {'others':>6}"
            "  vs peers (peer/markit)")
    lines = [f"== {s.case}: {human_bytes(s.size)} ==", head]
    for r in rows(s, skipped):
        tail = r.vs_peers or r.note
        lines.append(f"{r.job.label[:38]:38} {r.wall:>9} {r.runs:>2} {r.rate:>10}  {r.vs_limit:44} {r.rss:>10}"
                     f" {r.disk:>10} {r.others:>6}  {tail}")
    return "\n".join(lines)


def text_verdicts(verdicts: list[Verdict]) -> str:
    lines = ["== targets =="]
    for v in verdicts:
        lines.append(f"{v.status:4} [{v.case}] {v.target}: {v.measured}; {v.detail}")
    return "\n".join(lines)


def _md_table(header: list[str], body: list[list[str]]) -> list[str]:
    cells = [[c.replace("|", "\\|") for c in row] for row in body]
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in cells)]


def _critical(profile: Profile) -> str:
    """Which thread and kind of work the profiled run's wall follows."""
    busiest = max(profile.threads, key=lambda t: t.busy)
    kind, seconds = next(((k, t) for k, t in busiest.kinds if k != "waiting"), ("nothing", 0.0))
    share = busiest.busy / profile.wall if profile.wall else 0.0
    return (f"critical path: the {busiest.name} thread, busy {share:.0%} of the {profile.wall:.2f} s profiled run,"
            f" mostly {kind} ({seconds:.2f} s)")


def _reading(s: Summary, key: str, profile: Profile | None) -> str:
    """A sentence on where *key*'s time goes, from the timed runs and the profile."""
    io = limit_of("create", s.case)
    sha_key = "sha256-2" if io and COMPOSITE.get(io, ("", ""))[1] == "sha256-2" else "sha256"
    sha_name = LIMIT_LABELS[sha_key].removesuffix(" pass")
    wall, cp, sha = s.wall(key), s.wall("cp"), s.wall(sha_key)
    if wall is None:
        return "not measured"
    words = []
    cpu = s.cpu_share(key)
    if cpu is not None:
        busy = ("both cores busy" if cpu >= 1.7 else "one core and part of the other" if cpu >= 1.2
                else "about one core busy" if cpu >= 0.75 else "cores idle part of the time")
        words.append(f"CPU/wall {cpu:.2f} ({busy}{', markit + cat' if key == 'create-pipe' else ''})")
    if profile is not None:
        words += [f"{t.name} thread busy {t.busy:.2f} s: {t.shares()}" for t in profile.threads]
        words.append(_critical(profile))
    peers = _peers(s, key)
    if key == "inspect" and family(s.case) == "many" and s.wall("python-list"):
        words.append(f"wall {wall:.2f} s vs a bare python -c listing {s.wall('python-list'):.2f} s")
    elif key == "verify" and sha:
        words.append(f"wall {wall:.2f} s vs {'one SHA-256 pass' if sha_key == 'sha256' else sha_name} {sha:.2f} s")
    elif cp and sha and key != "inspect":
        limit, serial = max(cp, sha), cp + sha
        if wall <= 1.1 * limit:
            words.append(f"wall {wall:.2f} s is at the limit max(cp -r, {sha_name}) = {limit:.2f} s")
        elif abs(wall - serial) / serial < 0.1 and key in ("create", "create-pipe", "create-store", "unpack"):
            words.append(f"wall {wall:.2f} s ≈ cp -r + {sha_name} = {serial:.2f} s: copying and hashing add up"
                         f" instead of overlapping (the limit, overlapped on 2 cores, is {limit:.2f} s)")
        else:
            words.append(f"wall {wall:.2f} s vs the limit max(cp -r, {sha_name}) = {limit:.2f} s"
                         f" and cp -r + {sha_name} = {serial:.2f} s")
    if peers and family(s.case) == "many":
        words.append(f"peers (their wall ÷ markit's): {peers}")
    return "; ".join(words)


def _profiles_md(summaries: list[Summary], profiles: dict[tuple[str, str], Profile | None],
                 imports: Imports | None) -> list[str]:
    lines = ["## Where the time goes", "",
             ("From the timed runs (CPU/wall: user+system seconds over wall; 2.0 means both cores busy) and one"
             " profiled run per command, every thread with its own cProfile (`benchmarks/profiling.py`); a"
             " thread's *busy* time excludes waiting on locks and queues. Kinds of work are grouped from"
             " function names: SHA-256 (`hashlib`), CRC-32, deflate, read, write (`writev`, `pwrite`,"
             " `sendfile`...), waiting, start-up and imports, other Python."), ""]
    for s in summaries:
        for key, name in profiled(s.case):
            if not s.walls(key):
                continue
            profile = profiles.get((s.case, key))
            lines.append(f"- **{name}** ({s.case}): {_reading(s, key, profile)}.")
    lines.append("")
    for (case, key), profile in profiles.items():
        if profile is None:
            continue
        lines += [f"<details><summary>cProfile: {profile.label} ({case}), {profile.wall:.2f} s profiled</summary>", ""]
        for thread in profile.threads:
            lines += [f"{thread.name} thread:", ""]
            lines += _md_table(["function", "calls", "own s", "cumulative s"],
                               [[f"`{f}`", str(c), f"{own:.3f}", f"{cum:.3f}"] for f, c, own, cum in thread.top])
            lines.append("")
        lines += ["</details>", ""]
    if imports is not None:
        lines += [(f"Start-up of `{imports.label}`: {imports.total:.3f} s importing (`python -X importtime`);"
                  " the costliest imports, cumulative (↳: imported by a module above it, not necessarily the"
                  " one just above):"), ""]
        lines += _md_table(["module", "seconds"], [[f"`{m}`", f"{t:.3f}"] for m, t in imports.top])
        lines.append("")
    return lines


def _fmt_wall(wall: float | None) -> str:
    if wall is None:
        return "—"
    return f"{wall * 1000:.0f} ms" if wall < 1 else f"{wall:.2f} s"


def scaling_table(sweep: Scaling) -> tuple[list[str], list[list[str]]]:
    """The scaling sweep as (header, rows): every job's median wall per file count, its seconds per file (the
    least-squares slope), the per-file cost of each stretch between counts, and markit's slope ratio to its peers."""
    counts = sweep.counts
    header = ["job", *(f"{n:,} files" for n in counts), "s/file (fit)", "per-file cost by stretch",
              "slope ratio (markit ÷ peer)", "peak RSS"]
    body = []
    for op, peers in SCALE_OPS:
        for key in (op, *peers):
            if not sweep.points(key):
                continue
            job = next(j for j in JOBS if j.key == key)
            walls = [_fmt_wall(s.wall(key)) for s in sweep.summaries.values()]
            slope = sweep.slope(key)
            stretches = "; ".join(f"{a:,}→{b:,}: {cost * 1e6:.1f} µs" for a, b, cost in sweep.segments(key))
            ratios = "; ".join(f"{label(p)} {r:.2f}×" for p in peers
                               if key == op and (r := sweep.slope_ratio(op, p)) is not None)
            rss = max((v for s in sweep.summaries.values() if (v := s.worst(key, "rss")) is not None), default=None)
            body.append([job.label if job.kind != "markit" else f"**{job.label}**", *walls,
                         "—" if slope is None else f"{slope * 1e6:.1f} µs", stretches, ratios, human_bytes(rss)])
    return header, body


def text_scaling(sweep: Scaling) -> str:
    header, body = scaling_table(sweep)
    lines = ["== scaling: wall by file count ==", "  ".join(header)]
    lines += ["  ".join(c.replace("**", "") for c in row) for row in body]
    return "\n".join(lines)


def _case_lines(run: Run) -> list[str]:
    lines = []
    for case, what in run.cases.items():
        ratio = run.ratios.get(case)
        lines.append(f"- `{case}`: {what}" + (f"; zlib-6 ratio {ratio:.3f}" if ratio is not None else "") + ".")
    if not lines:  # an older --json: the big cases only
        lines = [f"- `{c}`: one `model.bin` of {run.size_gib:g} GiB plus a handler and four small text files"
                 f" (~0.5 MiB); zlib-6 ratio {r:.3f}." for c, r in run.ratios.items()]
    return lines


def _scaling_md(sweep: Scaling, chart: str) -> list[str]:
    if not sweep.summaries:
        return []
    header, body = scaling_table(sweep)
    peers = ", ".join(f"{op} next to {' and '.join(label(p) for p in ps)}" for op, ps in SCALE_OPS)
    lines = ["", "## Scaling with the file count", ""]
    if chart:
        lines += [f"![wall against file count]({chart})", ""]
    lines += [(f"Trees of {', '.join(f'{n:,}' for n in sweep.counts)} files of 4 KiB (500 to a folder) plus"
               f" `handler.py`; {peers}. Median wall per count; *s/file*: the slope of the least-squares line"
               " through (files, wall); *per-file cost by stretch*: the wall added per file from one count to the"
               " next, so a straight line has equal costs; *slope ratio*: markit's s/file over the peer's, the"
               " median over rounds of the ratio within a round."), ""]
    lines += _md_table(header, body)
    return lines


def markdown(run: Run, summaries: list[Summary], verdicts: list[Verdict],
             profiles: dict[tuple[str, str], Profile | None], imports: Imports | None, chart: str,
             scaling_chart: str = "") -> str:
    misses = [v for v in verdicts if v.status == "MISS"]
    cases = [s for s in summaries if family(s.case) != "scale"]
    sweep = Scaling.of(summaries)
    families = {family(s.case) for s in summaries}
    lines = [
        "# markit benchmarks", "",
        f"Generated by `{run.command}` on {run.date} (markit at `{run.commit}`). Do not edit: rerun `just bench`."
        + (f" {run.rendered}" if run.rendered else ""), "",
        f"Machine: {run.machine}; Python {run.python}. Cases, each read into the page cache before every job:", "",
        *_case_lines(run), "",
        "How it is measured:", "",
        (f"- {run.repeat} round(s); in each, every job of a case runs once, in an order rotated from round to"
        " round, so noise on this shared 2-core machine hits every job alike. The deflating peers of the one-file"
        " cases (torch-model-archiver default and tgz, `tar -czf`) run in the first round only."),
        ("- Wall: the median of the rounds (min–max alongside). A job under a second is taken 5 times per round,"
        " the median take kept. Ratios: the median over rounds of the ratio within one round; against a peer"
        " that ran once, the ratio of medians (one 45-second run says more than whichever 2-second sample"
        " shared its round)."),
        ("- The limits: create and unpack, max(`cp -r`, one SHA-256 pass) of the same data; verify, one SHA-256"
        " pass; inspect, a bare `python -c` that opens the zip and prints `MAR-INF/MANIFEST.json`."),
        ("- Others' load: cores other users kept busy during the job (`/proc/stat` minus the job's own CPU)."
        " Each job waits, up to a minute, for a quiet second before it starts; one under 30 s is taken again"
        " (up to twice, the quietest take kept) when others kept more than 0.25 cores busy."),
        ("- This VM returns freed memory to its host, and writing into such pages made `cp -r` of 2 GiB take"
        " 2.1–5.6 s instead of 1.0–1.2 s; so before every job that writes, the harness touches and frees 2.25×"
        " the checkpoint's size of memory (`benchmarks/measure.py`, `prefault`). `cp -r` and `markit create`"
        " also run once, untimed, before the first round."),
    ]
    if "big" in families:
        lines += [
            ("- Without pre-faulting: `markit unpack (not pre-faulted)` and `cp -r (not pre-faulted)` skip that"
             " touch and start after 3 s of rest, so the pages the previous job freed have gone back to the host"
             " as they would between a user's commands; the unpack target is checked both ways, each against a"
             " `cp -r` timed the same way."),
            ("- Overwrite: `markit create -f over the last round's` writes to a path outside the output folder"
             " that keeps its archive from run to run (made once, untimed, before the first round), so every run"
             " replaces a full-size archive; `markit create (default, auto)` is the same command onto a fresh"
             " path. To keep the pair fair, after every job the harness deletes that job's outputs (the fresh"
             " job's old archive is never deleted inside its timing) and calls `sync`, so both start with"
             " nothing dirty in the page cache: the old archive is clean and on disk. Both are pre-faulted alike;"
             " what the -f job pays beyond the fresh one is writing beside the old archive, swapping the names"
             " and deleting it."),
        ]
    if families & {"many", "sharded", "scale"}:
        lines += [
            ("- Many files and the scaling sweep: the peers are `zip -qr0` / `zip -qr` (run in the model folder,"
             " so the archive holds the same names), `tar -czf`, `unzip -tq` and `unzip -q -d` of markit's"
             " default `.mar` (made before timing), `tar -xf` of a `tar -cf` of the same folder (made before"
             " timing too), and, for inspect, a bare `python -c` that lists every entry with `zipfile`. Every"
             " unpack goes into a fresh folder. verify and unpack get `--max-entries` raised when an archive"
             " holds more than its default 100,000 entries (the 100,000-file tree)."),
            ("- Sharded: the limit is max(`cp -r`, SHA-256 of the 16 shards on both cores), the shards hashed by"
             " two threads side by side, a whole file each (`hashlib` lets go of the GIL), so it is what two"
             " cores can hash."),
        ]
    lines += [
        ("- markit runs from this checkout as `python -m markit`; its modules are byte-compiled first, as"
        " `pip install` would do (this machine sets `PYTHONDONTWRITEBYTECODE`, so an editable install would"
        " otherwise compile them from source on every run)."),
        ("- Peak RSS: `/usr/bin/time -f %M` (the process and the children it waited for; for the pipe,"
        " markit's). Peak extra disk: the growth of the folders a job writes to, sampled every 50 ms (less often"
        " when a walk of them gets slow: never over ~5% of a core), output included; `TMPDIR` points into them,"
        " so torch-model-archiver's temporary copy counts."),
        f"- The issue's targets are stated for 8 GiB and must hold at 2 GiB; this run is at {run.size_gib:g} GiB.",
        "",
    ]
    if cases and chart:
        lines += [f"![wall time per job, log scale]({chart})", "",
                  "Black ticks: the wall each markit job's time targets allow (the tightest of them).", ""]
    lines += [
        (f"## Targets: {len(verdicts) - len(misses) - sum(v.status == 'n/a' for v in verdicts)} pass,"
        f" {len(misses)} miss, {sum(v.status == 'n/a' for v in verdicts)} not measured"), "",
    ]
    lines += _md_table(["target", "case", "measured", "", "by how much"],
                       [[v.target, v.case, v.measured, f"**{v.status}**", v.detail] for v in verdicts])
    for s in cases:
        lines += ["", f"## Results: `{s.case}` ({human_bytes(s.size)})", ""]
        body = [[r.job.label, r.job.kind, f"{r.wall} ({r.spread})" if r.spread else r.wall, str(r.runs), r.rate,
                 r.vs_limit, r.vs_peers or r.note, r.cpu, r.others, r.rss, r.disk, r.output]
                for r in rows(s, run.skipped)]
        lines += _md_table(["job", "kind", "median wall (min–max)", "runs", "rate", "× the machine's limit",
                            "vs peers (peer wall ÷ markit wall)", "CPU/wall", "others' load", "peak RSS",
                            "peak extra disk", "output"], body)
    lines += _scaling_md(sweep, scaling_chart)
    lines += [""] + _profiles_md(cases, profiles, imports)
    lines += ["## Running it", "",
              "```bash",
              "just bench            # python benchmarks/compare.py --size-gib 2: every case",
              "python benchmarks/compare.py --size-gib 8 --repeat 3 --work /big/disk   # the issue's 8 GiB case",
              ("python benchmarks/compare.py --size-gib 0.05 --many-files 2000 --scale-counts 10,100,1000"
               " --repeat 1 --skip-tma --no-write   # a quick look at every case"),
              "python benchmarks/compare.py --cases many-files,sharded --no-write   # some cases only",
              "python benchmarks/compare.py --cases random --only create-overwrite,unpack-noprefault --no-write",
              "python benchmarks/compare.py --cases scaling --scale-counts 10,1000,10000 --no-write  # a shorter sweep",
              "just microbench       # pytest-benchmark: planning 100,000 files, manifest, RECORD, zip headers",
              "```", "",
              ("torch-model-archiver 0.12.0 runs from its own virtualenv (`tests/support/venvs.py`); matplotlib,"
              " for the charts, from another under `~/.cache/markit-tests/bench-plot`. Never gate CI on these"
              " times: CI runs the micro-benchmarks once, `python -m pytest -q benchmarks --benchmark-disable`,"
              " and renders a report of every case from made-up samples (`tests/test_bench_report.py`)."),
              ""]
    return "\n".join(lines)
