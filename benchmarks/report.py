"""From samples to figures: medians, ratios to the machine's limit and to peers, and the issue's targets.

Ratios are paired: for each round the job and its reference ran in, job ÷ reference, then the
median of those. The jobs of one round ran minutes apart at most, so noise on this shared machine
hits both sides of a ratio alike. Where fewer than two rounds have both (a slow peer that ran once),
the ratio is of the medians over all rounds: pairing one 45-second run with whichever 2-second
sample shared its round would let that one sample decide.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Callable
from dataclasses import dataclass

from benchmarks.checkpoint import family, scale_count
from benchmarks.jobs import JOBS, Job, jobs_for
from benchmarks.measure import Sample

__all__ = ["COMPOSITE", "LIMIT_IO", "LIMIT_IO2", "LIMIT_IO_NP", "LIMIT_LABELS", "NAMES", "PEERS", "SCALE_OPS",
           "Scaling", "Summary", "Verdict", "human_bytes", "human_rate", "limit_of", "needed", "scaling_verdicts",
           "verdicts"]

LIMIT_IO = "limit-io"
"""The machine's limit for create and unpack: max(cp -r, one SHA-256 pass), per round."""
LIMIT_IO2 = "limit-io-2"
"""The sharded case's: max(cp -r, SHA-256 of the shards on both cores), per round."""
LIMIT_IO_NP = "limit-io-np"
"""max(cp -r not pre-faulted, one SHA-256 pass): the limit for unpack without pre-faulting."""
COMPOSITE: dict[str, tuple[str, ...]] = {LIMIT_IO: ("cp", "sha256"), LIMIT_IO2: ("cp", "sha256-2"),
                                         LIMIT_IO_NP: ("cp-noprefault", "sha256")}
"""Limits that are the larger wall of two jobs within one round."""
LIMIT_LABELS = {LIMIT_IO: "max(cp -r, SHA-256)", "sha256": "SHA-256 pass", "python-manifest": "bare python -c",
                LIMIT_IO2: "max(cp -r, SHA-256 on 2 cores)", "sha256-2": "SHA-256 on 2 cores",
                LIMIT_IO_NP: "max(cp -r, SHA-256), not pre-faulted", "python-list": "bare python -c listing"}
NAMES = {"tma-default": "tma default", "tma-store": "tma zip-store", "tma-tgz": "tma tgz", "tar-gz": "tar -czf",
         "tar": "tar -cf", "zipstream": "zipstream-ng", "unzip-l": "unzip -l", "unzip-t": "unzip -t",
         "unzip-tq": "unzip -tq", "unzip-x": "unzip -q", "tar-x": "tar -xf", "zip": "zip -qr", "zip-store": "zip -qr0",
         "cp": "cp -r", "create": "markit default (file)", "inspect-tiny": "inspect of a tiny .mar",
         "unpack": "unpack pre-faulted"}
"""Short names of the jobs other jobs are compared with."""
RSS_LIMIT = 64 << 20  # the issue: peak RSS under 64 MiB for every command
DISK_SLACK = 1 << 20  # "no temporary copy": peak extra disk at most the output plus 1 MiB (metadata, temp names)
INSPECT_SIZE_SLACK = 1.2  # "independent of the archive size": the 2 GiB archive within 1.2x of a tiny one (noise)
BEND_LIMIT = 1.5  # "straight": the per-file cost over the last stretch of file counts at most 1.5x the stretch before

# what each markit job is compared with (peer wall / markit wall: above 1, markit is faster); a peer that did
# not run in a case is left out
PEERS: dict[str, tuple[str, ...]] = {
    "create": ("tma-default", "tma-store", "zipstream", "tar", "zip"),
    "create-overwrite": ("create",),
    "create-pipe": ("tma-default", "tma-store", "create"),
    "create-store": ("tma-store", "zipstream", "tar", "zip-store"),
    "create-tgz": ("tma-tgz", "tar-gz"),
    "create-deflate": ("tma-default",),
    "inspect": ("unzip-l", "inspect-tiny"),
    "verify": ("unzip-t", "unzip-tq"),
    "unpack": ("cp", "unzip-x", "tar-x"),
    "unpack-noprefault": ("unpack",),
}
SCALE_OPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("create", ("zip", "tar")), ("verify", ("unzip-tq",)), ("unpack", ("unzip-x", "tar-x")))
"""The scaling sweep: each markit command and the peers its per-file cost is set against."""

LIMITS = ("cat", "cp", "cp-noprefault", "sha256", "sha256-2", "python-manifest", "python-list")


def limit_of(key: str, case: str = "random") -> str | None:
    """The machine's limit for job *key*'s kind of work in *case*, or None (the limits; the scaling sweep)."""
    fam = family(case)
    if key in LIMITS or fam == "scale":
        return None
    if key in ("verify", "unzip-t", "unzip-tq"):
        return "sha256-2" if fam == "sharded" else "sha256"
    if key in ("inspect", "inspect-tiny", "unzip-l"):
        return "python-list" if fam == "many" else "python-manifest"
    if key in ("unpack-noprefault",):
        return LIMIT_IO_NP
    return LIMIT_IO2 if fam == "sharded" else LIMIT_IO


@dataclass(frozen=True)
class Summary:
    """Every sample of one case, by job key and round."""

    case: str
    size: int
    """The checkpoint's bytes."""
    samples: dict[str, dict[int, Sample]]

    def ok(self, key: str) -> dict[int, Sample]:
        return {r: s for r, s in self.samples.get(key, {}).items() if s.ok}

    def walls(self, key: str) -> dict[int, float]:
        if key in COMPOSITE:
            a, b = (self.walls(part) for part in COMPOSITE[key])
            return {r: max(a[r], b[r]) for r in a.keys() & b.keys()}
        return {r: s.wall for r, s in self.ok(key).items()}

    def wall(self, key: str) -> float | None:
        walls = self.walls(key)
        return statistics.median(walls.values()) if walls else None

    def ratio(self, key: str, ref: str) -> float | None:
        """Median over shared rounds of wall(key) / wall(ref); None if either never ran."""
        paired = self.paired(key, ref)
        return paired[0] if paired else None

    def paired(self, key: str, ref: str) -> tuple[float, float, float] | None:
        """(ratio, key's median wall, ref's median wall), over the rounds both ran in if there are two or
        more, else over all rounds."""
        a, b = self.walls(key), self.walls(ref)
        if not a or not b:
            return None
        shared = a.keys() & b.keys()
        if len(shared) >= 2:
            return (statistics.median(a[r] / b[r] for r in shared), statistics.median(a[r] for r in shared),
                    statistics.median(b[r] for r in shared))
        wall_a, wall_b = statistics.median(a.values()), statistics.median(b.values())
        return wall_a / wall_b, wall_a, wall_b

    def worst(self, key: str, field: str) -> int | None:
        values = [getattr(s, field) for s in self.ok(key).values()]
        return max(values) if values else None

    def cpu_share(self, key: str) -> float | None:
        ok = self.ok(key)
        return statistics.median(s.cpu / s.wall for s in ok.values()) if ok else None

    def others(self, key: str) -> float | None:
        """Median cores other users kept busy during *key*'s runs."""
        ok = self.ok(key)
        return statistics.median(s.others for s in ok.values()) if ok else None

    def output(self, key: str) -> int | None:
        ok = self.ok(key)
        return statistics.median(s.output_bytes for s in ok.values()) if ok else None

    def error(self, key: str) -> str:
        errors = [s.error for s in self.samples.get(key, {}).values() if s.error]
        return errors[0] if errors else ""


@dataclass(frozen=True)
class Verdict:
    """One target of the issue, checked on one case."""

    target: str
    case: str
    key: str
    """The markit job it is about."""
    measured: str
    status: str
    """``PASS``, ``MISS`` or ``n/a`` (not measured)."""
    detail: str
    """By how much it is met or missed."""
    bound: float | None = None
    """For a time target: the wall, seconds, the markit job must not exceed."""


def human_bytes(n: float | None) -> str:
    if n is None:
        return "—"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{int(n)} B"


def human_rate(size: int, seconds: float | None) -> str:
    if not seconds:
        return "—"
    rate = size / seconds
    return f"{rate / 1e9:.2f} GB/s" if rate >= 1e9 else f"{rate / 1e6:.0f} MB/s"


def _secs(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} s"


def label(key: str) -> str:
    """What the report calls job or limit *key* when something is compared with it."""
    return LIMIT_LABELS.get(key) or NAMES.get(key) or key


def _missing(target: str, case: str, key: str, why: str) -> Verdict:
    return Verdict(target, case, key, "—", "n/a", why)


def _at_most(s: Summary, target: str, key: str, ref: str, bound: float) -> Verdict:
    """wall(key) <= bound x wall(ref)."""
    paired = s.paired(key, ref)
    if paired is None:
        return _missing(target, s.case, key, _why_missing(s, key, ref))
    ratio, key_wall, ref_wall = paired
    measured = f"{ratio:.2f}× ({_secs(key_wall)} vs {label(ref)} {_secs(ref_wall)})"
    wall = bound * ref_wall
    if ratio <= bound:
        return Verdict(target, s.case, key, measured, "PASS", f"{1 - ratio / bound:.0%} headroom", wall)
    over = ratio * ref_wall - wall
    return Verdict(target, s.case, key, measured, "MISS",
                   f"by {ratio / bound - 1:.0%}: {over:.2f} s over {bound}× = {wall:.2f} s", wall)


def _at_least(s: Summary, target: str, key: str, peer: str, bound: float) -> Verdict:
    """wall(peer) / wall(key) >= bound."""
    paired = s.paired(peer, key)
    if paired is None:
        return _missing(target, s.case, key, _why_missing(s, key, peer))
    speed, peer_wall, key_wall = paired
    faster = f"{speed:.2f}× faster" if speed >= 1 else f"{1 / speed:.2f}× slower"
    measured = f"{faster} ({_secs(key_wall)} vs {_secs(peer_wall)})"
    wall = peer_wall / bound
    if speed >= bound:
        return Verdict(target, s.case, key, measured, "PASS", f"{speed / bound - 1:.0%} beyond {bound:g}×", wall)
    return Verdict(target, s.case, key, measured, "MISS", f"{bound / speed:.2f}× short: needs ≤ {wall:.2f} s", wall)


def _size_at_most(s: Summary, target: str, key: str, peer: str, bound: float) -> Verdict:
    mine, theirs = s.output(key), s.output(peer)
    if not mine or not theirs:
        return _missing(target, s.case, key, _why_missing(s, key, peer))
    ratio = mine / theirs
    measured = f"{ratio:.4f} of its size ({human_bytes(mine)} vs {human_bytes(theirs)})"
    if ratio <= bound:
        return Verdict(target, s.case, key, measured, "PASS", f"{(bound - ratio) * 100:.2f} points to spare")
    return Verdict(target, s.case, key, measured, "MISS", f"{mine - bound * theirs:,.0f} bytes over")


def _no_temp_copy(s: Summary, target: str, key: str, _ref: str = "", _bound: float = 0.0) -> Verdict:
    disk, out = s.worst(key, "disk"), s.output(key)
    if disk is None or out is None:
        return _missing(target, s.case, key, _why_missing(s, key, key))
    extra = disk - out
    measured = f"peak extra disk {human_bytes(disk)}, output {human_bytes(out)}"
    if extra <= DISK_SLACK:
        return Verdict(target, s.case, key, measured, "PASS", "nothing beyond the output")
    return Verdict(target, s.case, key, measured, "MISS", f"{human_bytes(extra)} beyond the output")


def _rss_of(summaries: list[Summary], target: str, case: str) -> Verdict:
    """Peak RSS of every markit job in *summaries* (one case, or the scaling sweep's) under 64 MiB."""
    peaks: dict[str, int] = {}
    for s in summaries:
        where = f" at {scale_count(s.case):,} files" if family(s.case) == "scale" else ""
        for j in jobs_for(s.case, JOBS):
            peak = s.worst(j.key, "rss") if j.kind == "markit" else None
            if peak is not None:
                peaks[j.key + where] = peak
    if not peaks:
        return _missing(target, case, "", "no markit command ran")
    top = max(peaks, key=lambda k: peaks[k])
    measured = f"max {human_bytes(peaks[top])} ({top})"
    over = sorted(k for k, v in peaks.items() if v >= RSS_LIMIT)
    key = top.split(" ")[0]
    if not over:
        return Verdict(target, case, key, measured, "PASS", f"{human_bytes(RSS_LIMIT - peaks[top])} to spare")
    return Verdict(target, case, key, measured, "MISS",
                   "; ".join(f"{k} {human_bytes(peaks[k])} (+{human_bytes(peaks[k] - RSS_LIMIT)})" for k in over))


def _rss(s: Summary, target: str, _key: str = "", _ref: str = "", _bound: float = 0.0) -> Verdict:
    return _rss_of([s], target, s.case)


def _why_missing(s: Summary, *keys: str) -> str:
    for key in (part for k in keys for part in COMPOSITE.get(k, (k,))):
        error = s.error(key)
        if error:
            return f"{key} failed: {error[:200]}"
        if not s.samples.get(key):
            return f"{key} not run"
    return "not measured"


RSS_TARGET = "peak RSS < 64 MiB, every markit command"


@dataclass(frozen=True)
class Check:
    """One of the issue's targets: where it applies (a family or a case), how it is checked, on which jobs."""

    where: str
    """A family (big, many, sharded) or a single case (float32)."""
    how: Callable[[Summary, str, str, str, float], Verdict]
    target: str
    key: str = ""
    ref: str = ""
    bound: float = 0.0

    def applies(self, case: str) -> bool:
        return self.where in (case, family(case))

    def __call__(self, s: Summary) -> Verdict:
        return self.how(s, self.target, self.key, self.ref, self.bound)


MAX_CP_SHA = "max(cp -r, SHA-256)"
CHECKS: tuple[Check, ...] = (
    # one big file (random, float32)
    Check("big", _at_most, f"create default: wall ≤ 1.2× {MAX_CP_SHA}", "create", LIMIT_IO, 1.2),
    Check("big", _at_least, "create default: ≥ 25× faster than tma default", "create", "tma-default", 25),
    Check("big", _at_least, "create default: faster than tma zip-store", "create", "tma-store", 1.0),
    Check("big", _no_temp_copy, "create default: no temporary copy", "create"),
    Check("big", _at_most, f"create -o - | cat: wall ≤ 1.2× {MAX_CP_SHA}", "create-pipe", LIMIT_IO, 1.2),
    Check("big", _at_most, "create -f over an existing archive: wall ≤ 1.15× the same create to a fresh path",
          "create-overwrite", "create", 1.15),
    Check("big", _at_least, "create tgz: ≥ 8× faster than tma tgz", "create-tgz", "tma-tgz", 8),
    Check("big", _size_at_most, "create tgz: size ≤ tma tgz", "create-tgz", "tma-tgz", 1.0),
    Check("float32", _size_at_most, "create --compression deflate: size within 1% of tma default",
          "create-deflate", "tma-default", 1.01),
    Check("float32", _at_least, "create --compression deflate: ≥ 10× faster than tma default",
          "create-deflate", "tma-default", 10),
    Check("big", _at_most, "inspect: wall ≤ 3× bare python -c", "inspect", "python-manifest", 3.0),
    Check("big", _at_most, "inspect: independent of archive size (≤ 1.2× a tiny .mar)",
          "inspect", "inspect-tiny", INSPECT_SIZE_SLACK),
    Check("big", _at_most, "verify: wall ≤ 1.2× one SHA-256 pass", "verify", "sha256", 1.2),
    Check("big", _at_least, "verify: ≥ 5× faster than unzip -t", "verify", "unzip-t", 5),
    Check("big", _at_most, f"unpack (pre-faulted): wall ≤ 1.3× {MAX_CP_SHA}", "unpack", LIMIT_IO, 1.3),
    Check("big", _at_most, f"unpack (not pre-faulted): wall ≤ 1.3× {MAX_CP_SHA}, cp -r not pre-faulted either",
          "unpack-noprefault", LIMIT_IO_NP, 1.3),
    Check("big", _rss, RSS_TARGET),
    # 20,000 files of 4 KiB
    Check("many", _at_most, "create zip-store: wall ≤ 1.0× zip -qr0", "create-store", "zip-store", 1.0),
    Check("many", _at_most, "create default: wall ≤ 1.0× zip -qr", "create", "zip", 1.0),
    Check("many", _at_most, "create tgz: wall ≤ 1.0× tar -czf", "create-tgz", "tar-gz", 1.0),
    Check("many", _at_most, "inspect (table): wall ≤ 2× bare python -c listing", "inspect", "python-list", 2.0),
    Check("many", _at_most, "verify: wall ≤ 1.0× unzip -tq", "verify", "unzip-tq", 1.0),
    Check("many", _at_most, "unpack: wall ≤ 1.0× unzip -q", "unpack", "unzip-x", 1.0),
    Check("many", _at_most, "unpack: wall ≤ 2× tar -xf of the same files", "unpack", "tar-x", 2.0),
    Check("many", _rss, RSS_TARGET),
    # 16 shards
    Check("sharded", _at_most, "create: wall ≤ 1.1× max(cp -r, SHA-256 on 2 cores)", "create", LIMIT_IO2, 1.1),
    Check("sharded", _at_most, "verify: wall ≤ 1.1× SHA-256 on 2 cores", "verify", "sha256-2", 1.1),
    Check("sharded", _rss, RSS_TARGET),
)


def verdicts(summary: Summary) -> list[Verdict]:
    """The issue's targets checked on *summary*'s case (the scaling sweep: :func:`scaling_verdicts`)."""
    return [check(summary) for check in CHECKS if check.applies(summary.case)]


def needed(keys: set[str]) -> set[str]:
    """The jobs the targets of the markit jobs *keys* are measured against: their references and limits."""
    out: set[str] = set()
    refs = [c.ref for c in CHECKS if c.key in keys]
    refs += [peer for op, peers in SCALE_OPS if op in keys for peer in peers]
    refs += [limit for key in keys for case in ("random", "many-files", "sharded")
             if (limit := limit_of(key, case)) is not None]
    for ref in refs:
        out.update(COMPOSITE.get(ref, (ref,)) if ref else ())
    return out


@dataclass(frozen=True)
class Scaling:
    """The scaling sweep: one summary per file count."""

    summaries: dict[int, Summary]
    """By file count, ascending."""

    @classmethod
    def of(cls, summaries: list[Summary]) -> Scaling:
        found = {scale_count(s.case): s for s in summaries if family(s.case) == "scale"}
        return cls(dict(sorted(found.items())))

    @property
    def counts(self) -> list[int]:
        return list(self.summaries)

    def points(self, key: str, by_round: int | None = None) -> list[tuple[int, float]]:
        """(file count, wall) of *key*: the median wall, or round *by_round*'s."""
        out = []
        for n, s in self.summaries.items():
            wall = s.wall(key) if by_round is None else s.walls(key).get(by_round)
            if wall is not None:
                out.append((n, wall))
        return out

    def slope(self, key: str, by_round: int | None = None) -> float | None:
        """Seconds per file: the least-squares line through (count, wall); None under two points."""
        pts = self.points(key, by_round)
        if len(pts) < 2:
            return None
        mean_n = statistics.fmean(n for n, _ in pts)
        mean_t = statistics.fmean(t for _, t in pts)
        spread = sum((n - mean_n) ** 2 for n, _ in pts)
        return sum((n - mean_n) * (t - mean_t) for n, t in pts) / spread if spread else None

    def slope_ratio(self, key: str, peer: str) -> float | None:
        """*key*'s seconds per file over *peer*'s: the median over rounds both ran at every count, else of medians."""
        rounds = set.intersection(*({r for r in s.walls(key).keys() & s.walls(peer).keys()}
                                    for s in self.summaries.values())) if self.summaries else set()
        ratios = []
        for r in sorted(rounds):
            mine, theirs = self.slope(key, r), self.slope(peer, r)
            if mine is not None and theirs:
                ratios.append(mine / theirs)
        if len(ratios) >= 2:
            return statistics.median(ratios)
        mine, theirs = self.slope(key), self.slope(peer)
        return mine / theirs if mine is not None and theirs else None

    def segments(self, key: str) -> list[tuple[int, int, float]]:
        """(from count, to count, seconds per added file) between consecutive counts, on median walls."""
        pts = self.points(key)
        return [(a, b, (tb - ta) / (b - a)) for (a, ta), (b, tb) in itertools.pairwise(pts)]

    def bend(self, key: str) -> tuple[float, tuple[int, int, float], tuple[int, int, float]] | None:
        """The last stretch's per-file cost over the one before (1.0: a straight line); None under 3 counts, or
        when a stretch's cost is not above zero (the wall fell as files were added: noise, not a cost)."""
        segs = self.segments(key)
        if len(segs) < 2 or segs[-2][2] <= 0 or segs[-1][2] <= 0:
            return None
        return segs[-1][2] / segs[-2][2], segs[-2], segs[-1]


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} µs"


def scaling_verdicts(summaries: list[Summary]) -> list[Verdict]:
    """Per command: markit's line straight (the last stretch's per-file cost ≤ 1.5× the one before), with the
    slope ratio to each peer; and peak RSS over the whole sweep."""
    sweep = Scaling.of(summaries)
    if not sweep.summaries:
        return []
    out = []
    for op, peers in SCALE_OPS:
        bend = sweep.bend(op)
        slopes = "; ".join(f"slope vs {label(p)} {r:.2f}×" for p in peers
                           if (r := sweep.slope_ratio(op, p)) is not None)
        if bend is None:
            target = f"{op}: straight in the file count (per-file cost, last stretch ≤ {BEND_LIMIT}× the one before)"
            why = ("needs 3 file counts or more" if len(sweep.points(op)) < 3
                   else "a stretch costs nothing measurable: the wall fell as files were added (noise)")
            out.append(Verdict(target, "scaling", op, slopes or "—", "n/a", why))
            continue
        ratio, (a, b, before), (_, d, last) = bend
        target = (f"{op}: straight in the file count (per-file cost {b:,}→{d:,} files ≤ {BEND_LIMIT}×"
                  f" {a:,}→{b:,})")
        measured = f"{_us(last)}/file vs {_us(before)}/file: {ratio:.2f}×" + (f"; {slopes}" if slopes else "")
        if ratio <= BEND_LIMIT:
            out.append(Verdict(target, "scaling", op, measured, "PASS", f"{1 - ratio / BEND_LIMIT:.0%} headroom"))
        else:
            out.append(Verdict(target, "scaling", op, measured, "MISS",
                               f"by {ratio / BEND_LIMIT - 1:.0%}: {_us(last - BEND_LIMIT * before)}/file over"))
    counts = sweep.counts
    out.append(_rss_of(list(sweep.summaries.values()), f"{RSS_TARGET}, {counts[0]:,} to {counts[-1]:,} files",
                       "scaling"))
    return out


def job_by_key() -> dict[str, Job]:
    return {j.key: j for j in JOBS}
