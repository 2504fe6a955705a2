"""From samples to figures: medians, ratios to the machine's limit and to peers, and the issue's targets.

Ratios are paired: for each round the job and its reference ran in, job ÷ reference, then the
median of those. The jobs of one round ran minutes apart at most, so noise on this shared machine
hits both sides of a ratio alike. Where fewer than two rounds have both (a slow peer that ran once),
the ratio is of the medians over all rounds: pairing one 45-second run with whichever 2-second
sample shared its round would let that one sample decide.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass

from benchmarks.jobs import JOBS, Job
from benchmarks.measure import Sample

__all__ = ["LIMIT_IO", "LIMIT_LABELS", "PEERS", "Summary", "Verdict", "human_bytes", "human_rate", "limit_of", "verdicts"]

LIMIT_IO = "limit-io"
"""The machine's limit for create and unpack: max(cp -r, one SHA-256 pass), per round."""
LIMIT_LABELS = {LIMIT_IO: "max(cp -r, SHA-256)", "sha256": "SHA-256 pass", "python-manifest": "bare python -c"}
RSS_LIMIT = 64 << 20  # the issue: peak RSS under 64 MiB for every command
DISK_SLACK = 1 << 20  # "no temporary copy": peak extra disk at most the output plus 1 MiB (metadata, temp names)
INSPECT_SIZE_SLACK = 1.2  # "independent of the archive size": the 2 GiB archive within 1.2x of a tiny one (noise)

# what each markit job is compared with (peer wall / markit wall: above 1, markit is faster)
PEERS: dict[str, tuple[str, ...]] = {
    "create": ("tma-default", "tma-store", "zipstream", "tar"),
    "create-pipe": ("tma-default", "tma-store", "create"),
    "create-store": ("tma-store", "zipstream", "tar"),
    "create-tgz": ("tma-tgz", "tar-gz"),
    "create-deflate": ("tma-default",),
    "inspect": ("unzip-l", "inspect-tiny"),
    "verify": ("unzip-t",),
    "unpack": ("cp",),
}


def limit_of(key: str) -> str | None:
    """The machine's limit for job *key*'s kind of work, or None for the limits themselves."""
    if key in ("cat", "cp", "sha256", "python-manifest"):
        return None
    if key in ("verify", "unzip-t"):
        return "sha256"
    if key in ("inspect", "inspect-tiny", "unzip-l"):
        return "python-manifest"
    return LIMIT_IO


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
        if key == LIMIT_IO:
            cp, sha = self.walls("cp"), self.walls("sha256")
            return {r: max(cp[r], sha[r]) for r in cp.keys() & sha.keys()}
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


def _missing(target: str, case: str, key: str, why: str) -> Verdict:
    return Verdict(target, case, key, "—", "n/a", why)


def _at_most(s: Summary, target: str, key: str, ref: str, bound: float) -> Verdict:
    """wall(key) <= bound x wall(ref)."""
    paired = s.paired(key, ref)
    if paired is None:
        return _missing(target, s.case, key, _why_missing(s, key, ref))
    ratio, key_wall, ref_wall = paired
    measured = f"{ratio:.2f}× ({_secs(key_wall)} vs {LIMIT_LABELS.get(ref, ref)} {_secs(ref_wall)})"
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


def _no_temp_copy(s: Summary, target: str, key: str) -> Verdict:
    disk, out = s.worst(key, "disk"), s.output(key)
    if disk is None or out is None:
        return _missing(target, s.case, key, _why_missing(s, key, key))
    extra = disk - out
    measured = f"peak extra disk {human_bytes(disk)}, output {human_bytes(out)}"
    if extra <= DISK_SLACK:
        return Verdict(target, s.case, key, measured, "PASS", "nothing beyond the output")
    return Verdict(target, s.case, key, measured, "MISS", f"{human_bytes(extra)} beyond the output")


def _rss(s: Summary) -> Verdict:
    target = "peak RSS < 64 MiB, every markit command"
    peaks = {j.key: s.worst(j.key, "rss") for j in JOBS if j.kind == "markit"}
    peaks = {k: v for k, v in peaks.items() if v is not None}
    if not peaks:
        return _missing(target, s.case, "", "no markit command ran")
    top = max(peaks, key=lambda k: peaks[k])
    measured = f"max {human_bytes(peaks[top])} ({top})"
    over = sorted(k for k, v in peaks.items() if v >= RSS_LIMIT)
    if not over:
        return Verdict(target, s.case, top, measured, "PASS", f"{human_bytes(RSS_LIMIT - peaks[top])} to spare")
    return Verdict(target, s.case, top, measured, "MISS",
                   "; ".join(f"{k} {human_bytes(peaks[k])} (+{human_bytes(peaks[k] - RSS_LIMIT)})" for k in over))


def _why_missing(s: Summary, *keys: str) -> str:
    for key in keys:
        if key == LIMIT_IO:
            continue
        error = s.error(key)
        if error:
            return f"{key} failed: {error[:200]}"
        if not s.samples.get(key):
            return f"{key} not run"
    return "not measured"


Check = Callable[[Summary], Verdict]
CHECKS: tuple[tuple[str, Check], ...] = (
    ("all", lambda s: _at_most(s, "create default: wall ≤ 1.2× max(cp -r, SHA-256)", "create", LIMIT_IO, 1.2)),
    ("all", lambda s: _at_least(s, "create default: ≥ 25× faster than tma default", "create", "tma-default", 25)),
    ("all", lambda s: _at_least(s, "create default: faster than tma zip-store", "create", "tma-store", 1.0)),
    ("all", lambda s: _no_temp_copy(s, "create default: no temporary copy", "create")),
    ("all", lambda s: _at_most(s, "create -o - | cat: wall ≤ 1.2× max(cp -r, SHA-256)", "create-pipe", LIMIT_IO, 1.2)),
    ("all", lambda s: _at_least(s, "create tgz: ≥ 8× faster than tma tgz", "create-tgz", "tma-tgz", 8)),
    ("all", lambda s: _size_at_most(s, "create tgz: size ≤ tma tgz", "create-tgz", "tma-tgz", 1.0)),
    ("float32", lambda s: _size_at_most(s, "create --compression deflate: size within 1% of tma default",
                                        "create-deflate", "tma-default", 1.01)),
    ("float32", lambda s: _at_least(s, "create --compression deflate: ≥ 10× faster than tma default",
                                    "create-deflate", "tma-default", 10)),
    ("all", lambda s: _at_most(s, "inspect: wall ≤ 3× bare python -c", "inspect", "python-manifest", 3.0)),
    ("all", lambda s: _at_most(s, "inspect: independent of archive size (≤ 1.2× a tiny .mar)",
                               "inspect", "inspect-tiny", INSPECT_SIZE_SLACK)),
    ("all", lambda s: _at_most(s, "verify: wall ≤ 1.2× one SHA-256 pass", "verify", "sha256", 1.2)),
    ("all", lambda s: _at_least(s, "verify: ≥ 5× faster than unzip -t", "verify", "unzip-t", 5)),
    ("all", lambda s: _at_most(s, "unpack: wall ≤ 1.3× max(cp -r, SHA-256)", "unpack", LIMIT_IO, 1.3)),
    ("all", _rss),
)


def verdicts(summary: Summary) -> list[Verdict]:
    """The issue's targets checked on *summary*'s case."""
    return [check(summary) for case, check in CHECKS if case in ("all", summary.case)]


def job_by_key() -> dict[str, Job]:
    return {j.key: j for j in JOBS}
