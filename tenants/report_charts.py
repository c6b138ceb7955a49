"""Charts for the reports, drawn with matplotlib's Agg backend into PNG files.

matplotlib is imported inside the functions so that importing this module (and the CLI)
costs nothing until a report is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

FUNNEL_STEPS = ("sent", "delivered", "visits", "forms", "leads", "mql", "sql", "opportunity", "won")
ACCENT, MUTED, TARGET = "#2563eb", "#94a3b8", "#dc2626"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def funnel_chart(counts: dict[str, int], title: str, path: Path) -> Path:
    """Horizontal bars from sent down to won, each labelled with its count."""
    plt = _pyplot()
    steps = [step for step in FUNNEL_STEPS if step in counts]
    values = [counts[step] for step in steps]
    fig, ax = plt.subplots(figsize=(7, 4))
    bars = ax.barh(steps[::-1], values[::-1], color=ACCENT)
    ax.bar_label(bars, padding=3)
    ax.set_title(title)
    ax.set_xlabel("count")
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_xlim(0, max([*values, 1]) * 1.15)
    return _save(fig, path)


def roi_chart(
    labels: Sequence[str], rois: Sequence[float | None], target: float, title: str, path: Path
) -> Path:
    """Pipeline ROI per group against the target line (no spend: no bar)."""
    plt = _pyplot()
    shown = [roi or 0.0 for roi in rois]
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.45 * len(labels) + 1.2)))
    colors = [ACCENT if value >= target else MUTED for value in shown]
    bars = ax.barh(list(labels)[::-1], shown[::-1], color=colors[::-1])
    ax.bar_label(
        bars, labels=[("n/a" if r is None else f"{r:.1f}x") for r in rois][::-1], padding=3
    )
    ax.axvline(target, color=TARGET, linestyle="--", label=f"target {target:.0f}x")
    ax.set_xlim(0, max([*shown, target]) * 1.2)
    ax.set_title(title)
    ax.set_xlabel("pipeline value / spend")
    ax.legend(loc="lower right")
    ax.spines[["top", "right"]].set_visible(False)
    return _save(fig, path)


def score_chart(components: Sequence[tuple[str, float, float]], title: str, path: Path) -> Path:
    """Points earned against the weight of each score component."""
    plt = _pyplot()
    names = [name for name, _, _ in components][::-1]
    weights = [weight for _, weight, _ in components][::-1]
    points = [pts for _, _, pts in components][::-1]
    fig, ax = plt.subplots(figsize=(7, 3.8))
    ax.barh(names, weights, color="#e2e8f0", label="weight")
    bars = ax.barh(names, points, color=ACCENT, label="points")
    ax.bar_label(
        bars, labels=[f"{p:.1f} / {w:.0f}" for p, w in zip(points, weights, strict=True)], padding=3
    )
    ax.set_title(title)
    ax.set_xlim(0, max([*weights, 1]) * 1.3)
    ax.legend(loc="lower right")
    ax.spines[["top", "right"]].set_visible(False)
    return _save(fig, path)


def trend_chart(
    cycles: Sequence[str], series: dict[str, Sequence[float]], title: str, path: Path
) -> Path:
    """One line per metric across cycles."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for name, values in series.items():
        ax.plot(list(cycles), list(values), marker="o", label=name)
    ax.set_title(title)
    ax.set_ylabel("count")
    ax.legend()
    ax.spines[["top", "right"]].set_visible(False)
    if not cycles:
        ax.text(0.5, 0.5, "no cycle yet", ha="center", transform=ax.transAxes)
    return _save(fig, path)
