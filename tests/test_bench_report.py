"""The benchmark report's ratios: paired by round, except against a peer that ran once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.compare import load_samples
from benchmarks.measure import Sample
from benchmarks.report import Summary


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
