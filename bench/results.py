"""What a benchmark leaves behind: its table, printed and kept as text, and a PNG chart of the
same figures, both under bench/results/ (git-ignored) and named after the benchmark:
``publish("chat", text, panels)`` writes bench/results/chat.txt and bench/results/chat.png.

A chart is a column of panels, one per unit (deliveries/s, ms, KiB...); each panel has a group
of bars per workload or figure, a bar per server (ours beside the baselines and peers measured
in the same run), and optionally a dashed line per group where its target is.
"""

from __future__ import annotations

import math
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Panel:
    """One chart: ``series`` maps a server to one value per group (NaN: not measured)."""

    title: str
    unit: str
    groups: Sequence[str]
    series: dict[str, Sequence[float]]
    #: A target per group (None: no target), drawn as a dashed line across the group.
    targets: Sequence[float | None] = field(default_factory=list)
    log: bool = False


def table(rows: Sequence[Sequence[str]], header: Sequence[str] | None = None) -> str:
    """Rows of cells as aligned columns; a header gets a rule under it."""
    lines = [*([header] if header else []), *rows]
    widths = [max(len(row[i]) for row in lines) for i in range(len(lines[0]))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    out = [line(row) for row in lines]
    if header:
        out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def publish(name: str, text: str, panels: Sequence[Panel]) -> None:
    """Print the table, then keep it and its chart under bench/results/."""
    print(text)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    (RESULTS / f"{name}.txt").write_text(f"{stamp}\n{text.strip()}\n")
    chart = RESULTS / f"{name}.png"
    plot(chart, f"{name} ({stamp})", panels)
    print(f"\nwrote {RESULTS / f'{name}.txt'} and {chart}", file=sys.stderr)


def plot(path: Path, title: str, panels: Sequence[Panel]) -> None:
    """Grouped bars, one panel under the other, saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(
        len(panels), 1, figsize=(10, 3.6 * len(panels)), squeeze=False, layout="constrained"
    )
    figure.suptitle(title)
    for ax, panel in zip(axes[:, 0], panels, strict=True):
        draw(ax, panel)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def draw(ax: Axes, panel: Panel) -> None:
    """One panel's bars, each labelled with its value."""
    width = 0.8 / max(1, len(panel.series))
    for i, (server, values) in enumerate(panel.series.items()):
        xs = [g + (i - (len(panel.series) - 1) / 2) * width for g in range(len(panel.groups))]
        shown = [0.0 if math.isnan(v) else v for v in values]
        bars = ax.bar(xs, shown, width, label=server)
        ax.bar_label(bars, labels=[label_of(v) for v in values], fontsize=7, padding=1)
    marked = [(g, t) for g, t in enumerate(panel.targets) if t is not None]
    for k, (g, target) in enumerate(marked):
        label = "target" if k == 0 else None
        ax.hlines(target, g - 0.45, g + 0.45, colors="black", linestyles="dashed", label=label)
    ax.set_title(panel.title, fontsize=10)
    ax.set_ylabel(panel.unit)
    ax.set_xticks(range(len(panel.groups)))
    ax.set_xticklabels([textwrap.fill(g, 28) for g in panel.groups], fontsize=8)
    if panel.log:
        ax.set_yscale("log")
    ax.margins(y=0.15)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))


def label_of(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"
