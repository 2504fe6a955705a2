"""Draw ``docs/benchmarks.png`` from the comparison's figures: ``python chart.py FIGURES.json OUT.png``.

Run by ``compare.py`` with the Python of a small virtualenv that holds matplotlib (it is not a
markit dependency), so this file imports nothing from markit or the benchmarks package.

FIGURES.json: ``{"title": str, "cases": [{"name", "limit", "limit_label", "bars": [{"label", "kind",
"wall", "miss", "bound"}]}]}``; kind is limit, peer or markit; miss marks a markit job that misses a
target; bound is the wall its time targets allow (the tightest), drawn as a tick.
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


def colour(bar: dict[str, object]) -> str:
    return COLOURS["miss"] if bar.get("miss") else COLOURS[str(bar["kind"])]


def draw(figures: dict[str, object], out: str) -> None:
    cases: list[dict[str, object]] = figures["cases"]  # type: ignore[assignment]
    height = 0.36 * max(len(c["bars"]) for c in cases) + 1.8  # type: ignore[arg-type]
    fig, axes = plt.subplots(1, len(cases), figsize=(7.2 * len(cases), height), squeeze=False, sharey=True)
    for ax, case in zip(axes[0], cases):
        bars: list[dict[str, object]] = case["bars"]  # type: ignore[assignment]
        labels = [str(b["label"]) for b in bars]
        walls = [float(b["wall"]) for b in bars]  # type: ignore[arg-type]
        ys = range(len(bars))
        ax.barh(ys, walls, color=[colour(b) for b in bars], height=0.7)
        ax.set_xscale("log")
        ax.set_yticks(list(ys), labels)
        if ax is axes[0][0]:
            ax.invert_yaxis()  # once: the axes share y, a second inversion would undo the first
        top = max(walls) * 4
        ax.set_xlim(min(walls) / 2, top)
        for y, wall, bar in zip(ys, walls, bars):
            text = f"{wall * 1000:.0f} ms" if wall < 0.1 else f"{wall:.2f} s" if wall < 10 else f"{wall:.0f} s"
            ax.text(wall * 1.08, y, text, va="center", fontsize=8)
            if bar.get("bound"):
                ax.plot([bar["bound"]] * 2, [y - 0.45, y + 0.45], color="black", linewidth=2)
        limit = float(case["limit"])  # type: ignore[arg-type]
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
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        draw(json.load(f), sys.argv[2])
