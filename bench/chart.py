"""The benchmark chart: one bar per figure, how many times better ours is than stock.

Bars are on a log scale around 1 (equal): right of the line ours is better, left of
it stock is. Rows without both medians (failed sides, application-only figures) are
left out. Drawn with matplotlib's Agg backend, so no display is needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Sequence

from bench.common import Figure

MAX_LABEL = 70


def short_label(figure: Figure) -> str:
    label = figure.name.replace("`", "").replace("↳ ", "  ↳ ")
    if len(label) > MAX_LABEL:
        label = label[: MAX_LABEL - 1] + "…"
    return f"{figure.family}: {label}"


def draw(figures: Sequence[Figure], path: Path, title: str) -> None:
    """Draw the ratio bars of ``figures`` into the PNG file ``path``.

    Raises:
        ImportError: matplotlib is not installed (``pip install -e .[bench]``).
        ValueError: no figure has both an ours and a stock median.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows: List[Figure] = [figure for figure in figures if figure.ratio is not None]
    if not rows:
        raise ValueError("no figure has both an ours and a stock median to compare")
    ratios = [figure.ratio or 1.0 for figure in rows]
    labels = [short_label(figure) for figure in rows]
    colors = ["#2e8b57" if ratio >= 1 else "#c0392b" for ratio in ratios]
    height = 1.2 + 0.26 * len(rows)
    fig, axis = plt.subplots(figsize=(12, height))
    positions = list(range(len(rows)))[::-1]
    axis.barh(positions, ratios, color=colors, left=0)
    axis.set_xscale("log")
    axis.axvline(1.0, color="black", linewidth=0.8)
    axis.set_yticks(positions)
    axis.set_yticklabels(labels, fontsize=7)
    axis.set_xlabel("ours vs rpyc 6.0.2: times better (log scale; > 1 = ours better)")
    axis.set_title(title)
    for position, ratio in zip(positions, ratios):
        axis.text(ratio, position, f" {ratio:.2f}×", va="center", fontsize=6)
    axis.set_xlim(min(min(ratios) / 2, 0.5), max(max(ratios) * 3, 2))
    axis.grid(axis="x", which="both", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
