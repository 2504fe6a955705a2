"""The benchmark report: ratios paired by round (except against a peer that ran once), and every case's targets,
tables and chart figures rendered from made-up samples, as CI runs the harness: once, timing nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.checkpoint import BIG, family, scale_case, scale_count
from benchmarks.compare import bar_figures, load_samples, main, scaling_figures
from benchmarks.jobs import JOBS, jobs_for
from benchmarks.measure import Sample
from benchmarks.render import Run, markdown, text_scaling, text_table
from benchmarks.report import Scaling, Summary, Verdict, scaling_verdicts, verdicts


def _s(wall: float) -> Sample:
    return Sample(wall=wall, cpu=wall, rss=1, disk=0, output_bytes=0)


def test_rounds_both_ran_in_are_paired() -> None:
    # round 1 was slow for both: per-round ratios 2, 1, 3 -> 2; the ratio of medians would be 3 / 1
    s = Summary("c", 1, {"job": {0: _s(2.0), 1: _s(4.0), 2: _s(3.0)}, "ref": {0: _s(1.0), 1: _s(4.0), 2: _s(1.0)}})
    ratio, job, ref = s.paired("job", "ref")  # type: ignore[misc]
    assert ratio == pytest.approx(2.0)
    assert (job, ref) == (3.0, 1.0)


def test_a_peer_that_ran_once_is_compared_with_the_median() -> None:
    s = Summary("c", 1, {"markit": {0: _s(2.4), 1: _s(1.7), 2: _s(1.8)}, "peer": {0: _s(45.0)}})
    ratio, peer, markit = s.paired("peer", "markit")  # type: ignore[misc]
    assert (peer, markit) == (45.0, 1.8)
    assert ratio == pytest.approx(25.0)  # paired with round 0 alone it would be 18.75


def test_samples_round_trip_through_the_json(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    timed = {"command": "python benchmarks/compare.py", "date": "today", "commit": "abc"}
    path.write_text(json.dumps({"timed": timed, "samples": {"random": {"cp": {"0": _s(1.25).__dict__}}}}))
    got_timed, samples = load_samples(path)
    assert got_timed == timed
    assert samples == {"random": {"cp": {0: _s(1.25)}}}


# --- every case's report from made-up samples: what CI runs of the comparison harness (no timing) ---

BIG_GIB = 2 << 30
SCALE = (10, 1_000, 10_000, 100_000)
ROUNDS = 3


def _sample(wall: float, rss: int = 30 << 20, output: int = 0) -> Sample:
    return Sample(wall=wall, cpu=wall * 1.4, rss=rss, disk=output, output_bytes=output)


def _wall(case: str, key: str, r: int) -> float:
    """A made-up wall for *key* in *case*, round *r*: markit a little slower than its references at some targets."""
    fam = family(case)
    noise = 1.0 + 0.02 * r
    if fam == "scale":
        n = scale_count(case)
        per_file = {"create": 60e-6, "zip": 30e-6, "tar": 8e-6, "verify": 20e-6, "unzip-tq": 10e-6,
                    "unpack": 90e-6, "unzip-x": 60e-6, "tar-x": 50e-6}[key]
        start = 0.3 if key in ("create", "verify", "unpack") else 0.005
        return (start + per_file * n) * noise
    base = {"big": 1.4, "many": 0.8, "sharded": 0.9}[fam]
    factors = {"cat": 0.2, "cp": 0.6, "cp-noprefault": 1.0, "sha256": 1.0, "sha256-2": 0.55, "create": 1.2,
               "create-overwrite": 1.3, "unpack-noprefault": 1.5, "zip": 1.5, "zip-store": 0.9, "tar-gz": 30.0,
               "tma-default": 40.0, "tma-tgz": 40.0, "python-list": 0.1, "inspect": 0.15, "unzip-tq": 1.0,
               "unzip-x": 1.3, "tar-x": 0.7}
    return base * factors.get(key, 1.1) * noise


def synthetic() -> dict[str, dict[str, dict[int, Sample]]]:
    """Samples for every job of every case, as a full run would save them (slow peers of the big cases: round 0)."""
    cases = [*BIG, "many-files", "sharded", *(scale_case(n) for n in SCALE)]
    out: dict[str, dict[str, dict[int, Sample]]] = {}
    for case in cases:
        out[case] = {}
        for job in jobs_for(case, JOBS):
            rounds = [0] if job.slow and family(case) == "big" else range(ROUNDS)
            rss = (40 << 20) if job.kind == "markit" else (2 << 20)
            out[case][job.key] = {r: _sample(_wall(case, job.key, r), rss, 1000) for r in rounds}
    return out


def _summaries(samples: dict[str, dict[str, dict[int, Sample]]]) -> list[Summary]:
    return [Summary(case, BIG_GIB if family(case) in ("big", "sharded") else 80 << 20, by_job)
            for case, by_job in samples.items()]


def _checked(summaries: list[Summary]) -> list[Verdict]:
    return [v for s in summaries if family(s.case) != "scale" for v in verdicts(s)] + scaling_verdicts(summaries)


def test_every_new_case_has_its_targets_in_the_table() -> None:
    checked = _checked(_summaries(synthetic()))
    by = {(v.case, v.target): v for v in checked}
    expected = {
        ("random", "create -f over an existing archive: wall ≤ 1.15× the same create to a fresh path"): "PASS",
        ("random", "unpack (not pre-faulted): wall ≤ 1.3× max(cp -r, SHA-256), cp -r not pre-faulted either"): "MISS",
        ("float32", "unpack (pre-faulted): wall ≤ 1.3× max(cp -r, SHA-256)"): "PASS",
        ("many-files", "create zip-store: wall ≤ 1.0× zip -qr0"): "MISS",
        ("many-files", "create default: wall ≤ 1.0× zip -qr"): "PASS",
        ("many-files", "create tgz: wall ≤ 1.0× tar -czf"): "PASS",
        ("many-files", "inspect (table): wall ≤ 2× bare python -c listing"): "PASS",
        ("many-files", "verify: wall ≤ 1.0× unzip -tq"): "MISS",
        ("many-files", "unpack: wall ≤ 1.0× unzip -q"): "PASS",
        ("many-files", "unpack: wall ≤ 2× tar -xf of the same files"): "PASS",
        ("many-files", "peak RSS < 64 MiB, every markit command"): "PASS",
        ("sharded", "create: wall ≤ 1.1× max(cp -r, SHA-256 on 2 cores)"): "MISS",
        ("sharded", "verify: wall ≤ 1.1× SHA-256 on 2 cores"): "MISS",
        ("scaling", "create: straight in the file count (per-file cost 10,000→100,000 files ≤ 1.5× 1,000→10,000)"):
            "PASS",
        ("scaling", "verify: straight in the file count (per-file cost 10,000→100,000 files ≤ 1.5× 1,000→10,000)"):
            "PASS",
        ("scaling", "unpack: straight in the file count (per-file cost 10,000→100,000 files ≤ 1.5× 1,000→10,000)"):
            "PASS",
        ("scaling", "peak RSS < 64 MiB, every markit command, 10 to 100,000 files"): "PASS",
    }
    for (case, target), status in expected.items():
        assert (case, target) in by, f"missing from the targets table: [{case}] {target}"
        assert by[(case, target)].status == status, by[(case, target)]
    # every verdict says by how much, and a missed time target gives the wall it allows
    for v in checked:
        assert v.detail and v.measured
        if v.status == "MISS" and "wall ≤" in v.target:
            assert v.bound is not None and "over" in v.detail
    # many-files, verify: 1.10x unzip -tq in every round -> missed by 10%
    miss = by[("many-files", "verify: wall ≤ 1.0× unzip -tq")]
    assert miss.measured.startswith("1.10×") and miss.detail.startswith("by 10%")


def test_scaling_slope_ratio_and_straightness() -> None:
    sweep = Scaling.of(_summaries(synthetic()))
    assert sweep.counts == list(SCALE)
    assert sweep.slope("create") == pytest.approx(60e-6 * 1.02, rel=1e-6)  # the median round's line
    assert sweep.slope_ratio("create", "zip") == pytest.approx(2.0)  # 60 µs/file over 30 µs/file, every round
    assert sweep.slope_ratio("unpack", "tar-x") == pytest.approx(1.8)
    bend = sweep.bend("create")
    assert bend is not None and bend[0] == pytest.approx(1.0)
    verdict = next(v for v in scaling_verdicts(list(sweep.summaries.values())) if v.key == "create")
    assert "slope vs zip -qr 2.00×" in verdict.measured and "slope vs tar -cf 7.50×" in verdict.measured


def test_a_line_that_bends_up_misses() -> None:
    def quadratic(n: int) -> Sample:
        return _sample(0.3 + 1e-9 * n * n)  # 1,000 -> 10,000: 11 µs/file; 10,000 -> 100,000: 110 µs/file

    summaries = [Summary(scale_case(n), n * 4096, {"create": {0: quadratic(n)}, "zip": {0: _sample(1e-5 * n)}})
                 for n in (1_000, 10_000, 100_000)]
    verdict = next(v for v in scaling_verdicts(summaries) if v.key == "create")
    assert verdict.status == "MISS"
    assert "10.00×" in verdict.measured and verdict.detail.startswith("by 567%")


def test_the_markdown_shows_every_case_and_the_scaling_table() -> None:
    summaries = _summaries(synthetic())
    checked = _checked(summaries)
    run = Run("python benchmarks/compare.py", "today", "2 × CPU", "3.11", "abc", 2.0, ROUNDS,
              {"random": 1.0, "float32": 0.928}, {}, "", {"random": "one big file", "many-files": "20,000 files",
                                                           "sharded": "16 shards", "scaling": "trees"})
    text = markdown(run, summaries, checked, {}, None, "benchmarks.png", "benchmarks-scaling.png")
    for heading in ("## Results: `random`", "## Results: `many-files`", "## Results: `sharded`",
                    "## Scaling with the file count", "![wall against file count](benchmarks-scaling.png)"):
        assert heading in text
    assert f"## Targets: {sum(v.status == 'PASS' for v in checked)} pass" in text
    assert "| create -f over an existing archive" in text and "| scaling |" in text
    assert "zip -qr 2.00×" in text  # the slope ratio in the scaling table
    assert "RENAME" not in text and "sync" in text  # the overwrite pair's fairness is explained
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| job | 10 files |"))
    assert lines[header + 2].startswith("| **markit create (default, auto)** | 307 ms |")
    for s in summaries:  # text tables too
        if family(s.case) != "scale":
            assert text_table(s, {}).startswith(f"== {s.case}:")
    assert "markit unpack" in text_scaling(Scaling.of(summaries))


def test_chart_figures_hold_what_chart_py_draws() -> None:
    summaries = _summaries(synthetic())
    checked = _checked(summaries)
    bars = bar_figures(summaries, checked, ROUNDS)
    assert [c["name"].split(":")[0] for c in bars["cases"]] == [*BIG, "many-files", "sharded"]  # type: ignore
    sharded = bars["cases"][3]  # type: ignore[index]
    assert sharded["limit_label"] == "max(cp -r, SHA-256 on 2 cores)"
    assert any(b["miss"] and b["bound"] for b in sharded["bars"])
    lines = scaling_figures(summaries, ROUNDS)
    panels = lines["scaling"]
    assert [p["name"] for p in panels] == ["markit create", "markit verify", "markit unpack"]  # type: ignore
    zip_line = panels[0]["lines"][1]  # type: ignore[index]
    assert zip_line["label"] == "zip -qr" and zip_line["slope_ratio"] == pytest.approx(2.0)
    assert [n for n, _ in zip_line["points"]] == list(SCALE)


STUB = {  # a stand-in for matplotlib (not a markit dependency) that takes every call and writes the PNG
    "matplotlib/__init__.py": "def use(*args, **kwargs):\n    pass\n",
    "matplotlib/pyplot.py": (
        "from unittest.mock import MagicMock\n"
        "def subplots(rows, columns, **kwargs):\n"
        "    fig = MagicMock()\n"
        "    fig.savefig.side_effect = lambda out, **kw: open(out, 'w').write('stub')\n"
        "    return fig, [[MagicMock() for _ in range(columns)] for _ in range(rows)]\n"),
    "matplotlib/lines.py": "from unittest.mock import MagicMock as Line2D\n",
    "matplotlib/patches.py": "from unittest.mock import MagicMock as Patch\n",
}


@pytest.mark.parametrize("real", [False, True], ids=["stub-matplotlib", "matplotlib"])
def test_chart_py_draws_both_charts(tmp_path: Path, real: bool) -> None:
    env = {**os.environ}
    if real:
        pytest.importorskip("matplotlib")
    else:
        for name, text in STUB.items():
            (tmp_path / "stub" / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / "stub" / name).write_text(text)
        env["PYTHONPATH"] = str(tmp_path / "stub")
    summaries = _summaries(synthetic())
    chart = Path(__file__).resolve().parent.parent / "benchmarks" / "chart.py"
    for name, figures in (("bars", bar_figures(summaries, _checked(summaries), ROUNDS)),
                          ("scaling", scaling_figures(summaries, ROUNDS))):
        (tmp_path / f"{name}.json").write_text(json.dumps(figures))
        subprocess.run([sys.executable, str(chart), str(tmp_path / f"{name}.json"), str(tmp_path / f"{name}.png")],
                       check=True, env=env, cwd=tmp_path)
        assert (tmp_path / f"{name}.png").stat().st_size > 0


def test_the_report_renders_again_from_saved_samples(tmp_path: Path) -> None:
    """``compare.py --samples`` with --no-profile: no checkpoint is built, nothing is timed."""
    samples = synthetic()
    info = {case: {"bytes": 80 << 20, "files": 20_001, "description": f"{case} made up", "ratio": None}
            for case in samples}
    path = tmp_path / "samples.json"
    path.write_text(json.dumps({
        "timed": {"command": "python benchmarks/compare.py --size-gib 2", "date": "today", "commit": "abc"},
        "samples": {c: {k: {str(r): s.__dict__ for r, s in v.items()} for k, v in by.items()}
                    for c, by in samples.items()},
        "cases": info, "skipped": {"tma-store": "skipped (--skip-tma)"}, "repeat": ROUNDS, "size_gib": 2.0,
        "machine": "2 × made-up CPU", "python": "3.11.7"}))
    out = tmp_path / "report.md"
    main(["--samples", str(path), "--no-profile", "--no-chart", "--out", str(out), "--work", str(tmp_path)])
    text = out.read_text()
    assert "2 × made-up CPU" in text and "(no profiles)" in text
    assert "## Results: `many-files`" in text and "## Scaling with the file count" in text
    assert "| create: wall ≤ 1.1× max(cp -r, SHA-256 on 2 cores) | sharded |" in text
    again = json.loads(out.with_suffix(".json").read_text())
    assert again["cases"] == info and again["repeat"] == ROUNDS
    assert set(again["samples"]) == set(samples)
    # --cases picks among the saved cases
    main(["--samples", str(path), "--no-profile", "--no-write", "--cases", "sharded", "--work", str(tmp_path)])
    assert not list(tmp_path.glob("markit-bench-*"))  # the work folder is removed
