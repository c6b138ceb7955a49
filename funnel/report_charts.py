"""Charts for the reports, drawn with matplotlib's Agg backend into PNG files.

Each chart answers one question at a glance, so each is drawn for that question rather
than as a generic bar chart: the funnel in two panels with their own scales (a thousand
emails sent would flatten ten leads to nothing) and the conversion from each step to the
next; ROI sorted, coloured by whether it meets the target, the target line named where it
is drawn; the score as each component's points against its weight, the weakest marked;
across cycles, grouped bars that read as well with one cycle as with ten.

matplotlib is imported inside the functions so that importing this module (and the CLI)
costs nothing until a report is written.

Names come in every script: text is drawn in DejaVu Sans (matplotlib's own) with the
installed fonts of :data:`FALLBACK_FONTS` behind it, glyph by glyph (Noto Sans CJK for
Japanese, Chinese and Korean, Symbola for emoji: Debian's fonts-noto-cjk and
fonts-symbola, which .ci/run installs). A character no installed font has is drawn as a
box; instead of one matplotlib warning per character on stderr, such characters are
collected (:func:`take_missing_glyphs`) and the report command names them in one line.
"""

from __future__ import annotations

import functools
import logging
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

FALLBACK_FONTS = (
    "Noto Sans CJK JP",
    "Noto Sans CJK SC",
    "Noto Sans CJK KR",
    "Noto Sans JP",
    "Symbola",
    "Noto Emoji",
    "Noto Sans Symbols 2",
)
"""Fonts drawn from, in this order, for what DejaVu Sans lacks (those installed)."""
_MISSING = re.compile(r"Glyph \d+ \((.+?)\) missing from font")
_missing_glyphs: set[str] = set()

REACH_STEPS = ("sent", "delivered", "opened", "clicked", "visits", "forms")
PIPELINE_STEPS = ("leads", "mql", "sql", "opportunity", "won")
SOCIAL_STEPS = ("impressions", "engagements", "link_clicks")
SHARE_OF = {"link_clicks": "impressions"}
"""Steps that are not a part of the step drawn above them (a click is not an engagement)."""
FUNNEL_STEPS = (*REACH_STEPS, *PIPELINE_STEPS)
STEP_LABELS = {
    "sent": "sent",
    "delivered": "delivered",
    "opened": "opened",
    "clicked": "clicked",
    "visits": "page visits",
    "forms": "form fills",
    "leads": "leads",
    "mql": "MQL",
    "sql": "SQL",
    "opportunity": "opportunities",
    "won": "won",
    "impressions": "impressions",
    "engagements": "engaged",
    "link_clicks": "clicks",
}
ACCENT, MUTED, GOOD, WEAK, TARGET = "#2563eb", "#cbd5e1", "#15803d", "#f59e0b", "#dc2626"
SERIES = ("#2563eb", "#7c3aed", "#0891b2", "#15803d", "#f59e0b", "#db2777", "#64748b")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 10, "axes.titlesize": 12, "axes.titleweight": "bold"})
    plt.rcParams["font.family"] = font_families()
    # "Failed to find font weight bold for Symbola": the regular weight is drawn, as meant.
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    return plt


@functools.cache
def font_families() -> list[str]:
    """DejaVu Sans, then each of :data:`FALLBACK_FONTS` that is installed."""
    from matplotlib import font_manager

    installed = {entry.name for entry in font_manager.fontManager.ttflist}
    if not installed & set(FALLBACK_FONTS):
        # matplotlib's font cache predates fonts installed since: add their files.
        for path in font_manager.findSystemFonts():
            if re.search(r"NotoSansCJK|NotoSans[A-Z]{2}-|Symbola|NotoEmoji", Path(path).name):
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError):
                    continue
        installed = {entry.name for entry in font_manager.fontManager.ttflist}
    return ["DejaVu Sans", *(name for name in FALLBACK_FONTS if name in installed)]


def take_missing_glyphs() -> set[str]:
    """The characters drawn as boxes since the last call (no installed font has them)."""
    missing = set(_missing_glyphs)
    _missing_glyphs.clear()
    return missing


def _save(fig: Any, path: Path, *, margins: dict[str, float] | None = None) -> Path:
    """Write the PNG. Charts whose labels are known in advance (a partner's report draws
    four per partner) take fixed ``margins``: tight_layout draws the figure once more to
    measure it, which is a third of a report's time."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if margins:
            fig.subplots_adjust(**margins)
        else:
            fig.tight_layout()
        fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    for warning in caught:
        found = _MISSING.search(str(warning.message))
        if found:
            _missing_glyphs.add(_character(found.group(1)))
        else:
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    return path


def _character(name: str) -> str:
    """The character matplotlib names as ``\\N{CJK UNIFIED IDEOGRAPH-793E}``."""
    try:
        return str(name.encode("ascii").decode("unicode_escape"))
    except UnicodeDecodeError:
        return name


FUNNEL_MARGINS = {"left": 0.1, "right": 0.98, "top": 0.84, "bottom": 0.08, "wspace": 0.45}


def _score_margins(rows: int) -> dict[str, float]:
    height = 0.42 * rows + 1.5  # inches, as the figure is made
    return {"left": 0.2, "right": 0.98, "top": 1 - 0.45 / height, "bottom": 0.75 / height}


def _plain_axes(ax: Any) -> None:
    ax.spines[["top", "right"]].set_visible(False)


def step_labels(counts: dict[str, int], steps: Sequence[str]) -> list[str]:
    """Each step's count, and from the second step on its share of the step before. A step
    larger than the one before is not a conversion from it (page visits also come from
    posts, ads and people who typed the address): it says so instead of "900% of"."""
    labels = []
    for i, step in enumerate(steps):
        count = counts.get(step, 0)
        base = SHARE_OF.get(step, steps[i - 1] if i else "")
        before = counts.get(base, 0) if base else 0
        if not before:
            share = ""
        elif count > before:
            share = f"  (more than {STEP_LABELS[base]}: other sources too)"
        else:
            share = f"  ({count / before:.0%} of {STEP_LABELS[base]})"
        labels.append(f"{count:,}{share}")
    return labels


def funnel_chart(counts: dict[str, int], title: str, path: Path) -> Path:
    """Reach (sent to form fills) and pipeline (leads to won), side by side, each bar with
    its count and its conversion from the step above; a third panel with the social posts'
    and search ads' numbers once the networks reported any."""
    plt = _pyplot()
    panels = [(REACH_STEPS, "Email and pages", ACCENT), (PIPELINE_STEPS, "Pipeline", GOOD)]
    if any(counts.get(step) for step in SOCIAL_STEPS):
        panels.insert(1, (SOCIAL_STEPS, "Social posts and search ads", "#7c3aed"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2))
    for ax, (steps, name, color) in zip(axes, panels, strict=True):
        values = [counts.get(step, 0) for step in steps]
        bars = ax.barh([STEP_LABELS[s] for s in steps][::-1], values[::-1], color=color)
        ax.bar_label(bars, labels=step_labels(counts, steps)[::-1], padding=3, fontsize=9)
        ax.set_xlim(0, max([*values, 1]) * 1.7)  # room for the labels
        ax.set_title(name, loc="left")
        ax.tick_params(axis="x", labelsize=8)
        _plain_axes(ax)
    fig.suptitle(title, fontsize=13, fontweight="bold")
    margins = FUNNEL_MARGINS | ({"left": 0.07} if len(panels) == 3 else {})
    return _save(fig, path, margins=margins)


def roi_chart(
    labels: Sequence[str],
    rois: Sequence[float | None],
    target: float,
    title: str,
    path: Path,
    *,
    limit: int = 40,
    margins: dict[str, float] | None = None,
) -> Path:
    """ROI per group, highest first, green when it meets the target; groups without
    spend have no ROI and are named in a note instead of drawn as a zero."""
    plt = _pyplot()
    from matplotlib.patches import Patch

    pairs = list(zip(labels, rois, strict=True))
    measured = sorted(((label, roi) for label, roi in pairs if roi), key=lambda pair: -pair[1])
    # Many partners with spend and no pipeline yet would be a wall of empty bars: named
    # in the note instead (a single group, as in a partner's own report, keeps its bar).
    nothing = [label for label, roi in pairs if roi == 0]
    if len(pairs) <= 3:
        measured += [(label, 0.0) for label in nothing]
        nothing = []
    unmeasured = [label for label, roi in pairs if roi is None]
    shown = measured[:limit]
    fig, ax = plt.subplots(figsize=(9, max(2.2, 0.3 * len(shown) + 1.6)))
    if shown:
        names = [label for label, _ in shown][::-1]
        values = [roi for _, roi in shown][::-1]
        colors = [GOOD if value >= target else WEAK for value in values]
        bars = ax.barh(names, values, color=colors)
        ax.bar_label(bars, labels=[f"{v:.1f}x" for v in values], padding=3, fontsize=9)
        top = max([*values, target]) * 1.18
        ax.set_xlim(0, top)
        ax.set_ylim(-0.6, len(names) - 0.4)
    else:
        ax.set_xlim(0, target * 1.5)
        empty = "no pipeline yet" if nothing else "no spend recorded yet"
        ax.text(0.5, 0.5, empty, ha="center", transform=ax.transAxes)
        ax.set_yticks([])
    ax.axvline(target, color=TARGET, linestyle="--", linewidth=1.5)
    ax.text(
        target,
        1.0,
        f" {target:.0f}x target",
        color=TARGET,
        va="bottom",
        transform=ax.get_xaxis_transform(),
        fontsize=9,
    )
    ax.set_xlabel("pipeline value / spend")
    ax.set_title(title, loc="left", pad=16)
    ax.legend(
        handles=[
            Patch(color=GOOD, label=f"meets {target:.0f}x"),
            Patch(color=WEAK, label="below target"),
        ],
        loc="lower right",
        fontsize=8,
        frameon=False,
    )
    notes = []
    if len(measured) > limit:
        notes.append(f"the {limit} highest of {len(measured)} shown")
    if nothing:
        notes.append(f"{len(nothing)} with spend and no pipeline yet (0x): " + _names(nothing))
    if unmeasured:
        notes.append(f"{len(unmeasured)} without spend (no ROI): " + _names(unmeasured))
    if notes:
        fig.text(0.01, 0.005, "; ".join(notes), fontsize=8, color="#475569")
    _plain_axes(ax)
    if margins:
        fig.subplots_adjust(**margins)
    else:
        fig.tight_layout(rect=(0, 0.03 if notes else 0, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _names(labels: Sequence[str], most: int = 6) -> str:
    ids = [label.split()[0] for label in labels]
    return ", ".join(ids[:most]) + (", ..." if len(ids) > most else "")


def return_chart(
    pipeline_roi: float | None, won_roi: float | None, target: float, title: str, path: Path
) -> Path:
    """One partner's pipeline and won ROI against the target."""
    return roi_chart(
        ["pipeline / spend", "won / spend"],
        [pipeline_roi, won_roi],
        target,
        title,
        path,
        margins={"left": 0.17, "right": 0.97, "top": 0.74, "bottom": 0.24},
    )


def score_chart(
    components: Sequence[tuple[str, float, float]],
    title: str,
    path: Path,
    *,
    weakest: str | None = None,
) -> Path:
    """Points earned against the weight of each score component; the one that loses the
    most points (what holds the partner back) in amber."""
    plt = _pyplot()
    from matplotlib.patches import Patch

    names = [name for name, _, _ in components][::-1]
    weights = [weight for _, weight, _ in components][::-1]
    points = [pts for _, _, pts in components][::-1]
    fig, ax = plt.subplots(figsize=(9, 0.42 * len(names) + 1.5))
    ax.barh(names, weights, color="#e2e8f0")
    colors = [WEAK if name == weakest else ACCENT for name in names]
    bars = ax.barh(names, points, color=colors)
    ax.bar_label(
        bars,
        labels=[f"{p:.1f} of {w:.0f}" for p, w in zip(points, weights, strict=True)],
        padding=3,
        fontsize=9,
    )
    for label in ax.get_yticklabels():
        if label.get_text() == weakest:  # even a component at 0 points shows it
            label.set_color(WEAK)
            label.set_fontweight("bold")
    ax.set_title(title, loc="left")
    ax.set_xlabel("points (the grey bar is the component's weight: its most)")
    ax.set_xlim(0, max([*weights, 1]) * 1.35)
    handles = [Patch(color=ACCENT, label="points"), Patch(color="#e2e8f0", label="weight")]
    if weakest:
        handles.append(Patch(color=WEAK, label="holds it back"))
    ax.legend(handles=handles, loc="lower right", fontsize=8, frameon=False)
    _plain_axes(ax)
    return _save(fig, path, margins=_score_margins(len(names)))


def score_stack_chart(
    partners: Sequence[tuple[str, Sequence[tuple[str, float, float]]]], title: str, path: Path
) -> Path:
    """Each partner's score as stacked component points, highest score on top; the
    legend names each component with its weight."""
    plt = _pyplot()
    names = [label for label, _ in partners][::-1]
    fig, ax = plt.subplots(figsize=(10, max(2.5, 0.32 * len(names) + 1.8)))
    if not partners:
        ax.text(0.5, 0.5, "no partner yet", ha="center", transform=ax.transAxes)
        return _save(fig, path)
    components = [(name, weight) for name, weight, _ in partners[0][1]]
    left = [0.0] * len(names)
    for i, (component, weight) in enumerate(components):
        values = [dict((n, p) for n, _, p in parts)[component] for _, parts in partners][::-1]
        ax.barh(
            names,
            values,
            left=left,
            color=SERIES[i % len(SERIES)],
            label=f"{component} ({weight:.0f})",
        )
        left = [a + b for a, b in zip(left, values, strict=True)]
    for y, total in enumerate(left):
        ax.text(total + 1, y, f"{total:.0f}", va="center", fontsize=9)
    ax.set_xlim(0, 112)
    ax.set_xlabel("score out of 100 (legend: component and its weight)")
    ax.set_title(title, loc="left")
    ax.legend(
        loc="upper center",
        bbox_to_anchor=(0.5, -0.12 - 2.0 / (len(names) + 6)),
        ncol=4,
        fontsize=8,
        frameon=False,
    )
    _plain_axes(ax)
    return _save(fig, path)


def trend_chart(
    cycles: Sequence[str],
    series: dict[str, Sequence[float]],
    title: str,
    path: Path,
    *,
    note: str = "",
) -> Path:
    """Grouped bars per cycle, one colour per metric, each bar with its count."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 3.8))
    count = len(series)
    width = 0.8 / max(count, 1)
    for i, (name, values) in enumerate(series.items()):
        xs = [x + (i - (count - 1) / 2) * width for x in range(len(cycles))]
        bars = ax.bar(xs, list(values), width=width, label=name, color=SERIES[i % len(SERIES)])
        ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values], padding=2, fontsize=8)
    ax.set_xticks(range(len(cycles)), list(cycles))
    crowded = len(cycles) > 3
    if crowded:
        ax.tick_params(axis="x", labelrotation=20, labelsize=8)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
    ax.set_xlim(-0.6, max(len(cycles), 2) - 0.4)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_ylim(0, max([1.0, *(v for values in series.values() for v in values)]) * 1.2)
    ax.set_title(title, loc="left")
    ax.set_ylabel("count")
    ax.legend(loc="upper right", fontsize=8, frameon=False, ncol=len(series))
    _plain_axes(ax)
    if not cycles:
        ax.text(0.5, 0.5, "no cycle yet", ha="center", transform=ax.transAxes)
    elif len(cycles) == 1:
        note = "; ".join(
            x for x in ("one cycle so far: the trend shows from the second", note) if x
        )
    if note:
        fig.text(0.01, 0.01, note, fontsize=8, color="#475569")
    bottom = 0.12 + (0.06 if note else 0) + (0.12 if crowded else 0)
    return _save(fig, path, margins={"left": 0.08, "right": 0.98, "top": 0.88, "bottom": bottom})
