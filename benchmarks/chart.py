"""Draw ``docs/benchmarks.png`` from the comparison's figures: ``python chart.py FIGURES.json OUT.png``.

Run by ``compare.py`` with the Python of a small virtualenv that holds matplotlib (it is not a
markit dependency), so this file imports nothing from markit or the benchmarks package.

FIGURES.json, bars (one panel per case, two panels to a row): ``{"title": str, "cases": [{"name",
"limit", "limit_label", "bars": [{"label", "kind", "wall", "miss", "bound"}]}]}``; kind is limit,
peer or markit; miss marks a markit job that misses a target; bound is the wall its time targets
allow (the tightest), drawn as a tick.

Or lines, the scaling sweep (``docs/benchmarks-scaling.png``): ``{"title": str, "scaling": [{"name",
"lines": [{"label", "kind", "points": [[files, wall], ...], "per_file", "slope_ratio"}]}]}``: a panel
per markit command, wall against file count on linear axes (a straight line is a constant cost per
file), each line labelled with its seconds per file and, for a peer, markit's slope over its own.
"""

from __future__ import annotations

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

COLOURS = {"limit": "#4C72B0", "peer": "#A0A0A0", "markit": "#DD8452", "miss": "#C44E52"}
PEER_STYLES = ("--", ":", "-.")
PER_ROW = 2  # bar panels side by side


def colour(bar: dict[str, object]) -> str:
    return COLOURS["miss"] if bar.get("miss") else COLOURS[str(bar["kind"])]


def _wall_text(wall: float) -> str:
    return f"{wall * 1000:.0f} ms" if wall < 0.1 else f"{wall:.2f} s" if wall < 10 else f"{wall:.0f} s"


def draw(figures: dict[str, object], out: str) -> None:
    if "scaling" in figures:
        draw_scaling(figures, out)
        return
    cases: list[dict[str, object]] = figures["cases"]  # type: ignore[assignment]
    columns = min(PER_ROW, len(cases))
    grid_rows = -(-len(cases) // columns)
    height = 0.36 * max(len(c["bars"]) for c in cases) + 1.8  # type: ignore[arg-type]
    fig, axes = plt.subplots(grid_rows, columns, figsize=(7.6 * columns, height * grid_rows), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax in flat[len(cases):]:
        ax.set_visible(False)
    for ax, case in zip(flat, cases):
        bars: list[dict[str, object]] = case["bars"]  # type: ignore[assignment]
        labels = [str(b["label"]) for b in bars]
        walls = [float(b["wall"]) for b in bars]  # type: ignore[arg-type]
        ys = range(len(bars))
        ax.barh(ys, walls, color=[colour(b) for b in bars], height=0.7)
        ax.set_xscale("log")
        ax.set_yticks(list(ys), labels)
        ax.invert_yaxis()  # each panel has its own jobs: the first job on top
        top = max(walls) * 4
        ax.set_xlim(min(walls) / 2, top)
        for y, wall, bar in zip(ys, walls, bars):
            ax.text(wall * 1.08, y, _wall_text(wall), va="center", fontsize=8)
            if bar.get("bound"):
                ax.plot([bar["bound"]] * 2, [y - 0.45, y + 0.45], color="black", linewidth=2)
        limit = float(case["limit"])  # type: ignore[arg-type]
        if limit > 0:
            ax.axvline(limit, color=COLOURS["limit"], linestyle="--", linewidth=1)
            ax.text(limit, 1.005, f"{case['limit_label']} = {limit:.2f} s", fontsize=8, color=COLOURS["limit"],
                    ha="center", va="bottom", transform=ax.get_xaxis_transform())
        ax.set_title(str(case["name"]), fontsize=11, pad=16)
        ax.set_xlabel("median wall, seconds (log scale; shorter is better)")
        ax.grid(axis="x", which="major", alpha=0.3)
    fig.legend(handles=[Patch(color=COLOURS["limit"], label="machine's limit (cat, cp -r, SHA-256, bare python)"),
                        Patch(color=COLOURS["peer"], label="peer tool"),
                        Patch(color=COLOURS["markit"], label="markit: its targets met"),
                        Patch(color=COLOURS["miss"], label="markit: a target missed"),
                        Line2D([], [], color="black", linewidth=2, label="markit's target (tightest wall bound)")],
               loc="lower center", ncol=5, fontsize=8, frameon=False)
    fig.suptitle(str(figures["title"]), fontsize=12)
    fig.tight_layout(rect=(0, 0.05 / grid_rows, 1, 1 - 0.03 / grid_rows))
    fig.savefig(out, dpi=110)


def draw_scaling(figures: dict[str, object], out: str) -> None:
    panels: list[dict[str, object]] = figures["scaling"]  # type: ignore[assignment]
    fig, axes = plt.subplots(1, len(panels), figsize=(6.0 * len(panels), 4.8), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        lines: list[dict[str, object]] = panel["lines"]  # type: ignore[assignment]
        peers = 0
        for line in lines:
            points: list[list[float]] = line["points"]  # type: ignore[assignment]
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            per_file = line.get("per_file")
            text = str(line["label"])
            if per_file is not None:
                text += f": {float(per_file) * 1e6:.1f} µs/file"  # type: ignore[arg-type]
            if line.get("slope_ratio") is not None:
                text += f" (markit's slope {float(line['slope_ratio']):.2f}×)"  # type: ignore[arg-type]
            if line["kind"] == "markit":
                ax.plot(xs, ys, color=COLOURS["markit"], marker="o", linewidth=2.2, label=text, zorder=3)
            else:
                ax.plot(xs, ys, color="#606060", marker="s", markersize=4, linewidth=1.2,
                        linestyle=PEER_STYLES[peers % len(PEER_STYLES)], label=text)
                peers += 1
            ax.annotate(_wall_text(ys[-1]), (xs[-1], ys[-1]), textcoords="offset points", xytext=(4, 0),
                        fontsize=8, va="center")
        ax.set_title(str(panel["name"]), fontsize=11)
        ax.set_xlabel("files of 4 KiB")
        ax.set_ylabel("median wall, seconds (shorter is better)")
        right = max(p[0] for line in lines for p in line["points"])  # type: ignore[attr-defined]
        ax.set_xlim(0, right * 1.18)  # room for the last point's label
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(str(figures["title"]), fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        draw(json.load(f), sys.argv[2])
