"""The HTML of a partner's results page and of its error page (Jinja, autoescaped).

The templates are web/templates/partner/*.html, the engine's own: every value passed in
is data.
The charts are inline PNGs (``data:`` URIs) and the style sheet is inline, allowed by its
hash in the page's Content-Security-Policy (:data:`CSP`): the page loads nothing else and
runs no script.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from importlib.resources import files

from partnercast.funnel.metrics import FunnelRow
from partnercast.funnel.partner_results import PartnerResults, ResultCharts
from partnercast.web.templating import render


@lru_cache(maxsize=1)
def style() -> str:
    """The page's inline style sheet (templates/partner/style.css)."""
    return (files("partnercast.web") / "templates" / "partner" / "style.css").read_text("utf-8")


@lru_cache(maxsize=1)
def csp() -> str:
    """The page's Content-Security-Policy: its own inline style (by hash) and data: images."""
    digest = base64.b64encode(hashlib.sha256(style().encode()).digest()).decode()
    return (
        f"default-src 'none'; style-src 'sha256-{digest}'; img-src data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


FIGURES = (
    ("sent", "sent"),
    ("delivered", "delivered"),
    ("bounced", "bounced"),
    ("complained", "complained"),
    ("opened", "opened"),
    ("clicked", "clicked"),
    ("visits", "page visits"),
    ("forms", "form fills"),
    ("leads", "leads"),
    ("mql", "MQL"),
    ("sql", "SQL"),
    ("opportunity", "opportunities"),
    ("won", "won"),
)
"""The funnel's steps, in the order the page shows them (tables and figures)."""


def money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def roi(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}x"


def png(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def figures(row: FunnelRow) -> list[tuple[str, str, str]]:
    """(key, label, shown value) of every headline number, money and ROI last."""
    out = [(key, label, f"{row.counts.get(key, 0):,}") for key, label in FIGURES]
    out += [
        ("pipeline", "pipeline value", money(row.pipeline)),
        ("won_value", "won value", money(row.won_value)),
        ("spend", "spend", money(row.spend)),
        ("roi", "pipeline ROI", roi(row.roi_pipeline)),
    ]
    return out


@dataclass(frozen=True)
class PageView:
    results: PartnerResults
    charts: ResultCharts
    expires_at: int  # Unix seconds


def page_html(view: PageView, now: datetime) -> str:
    """The whole results page, as of ``now``."""
    r = view.results
    return render(
        "partner/page.html",
        r=r,
        t=r.total,
        card=r.card,
        charts=view.charts,
        target=f"{r.target:.0f}",
        figures=figures(r.total),
        columns=FIGURES,
        style=style(),
        now=f"{now:%Y-%m-%d %H:%M}",
        until=f"{datetime.fromtimestamp(view.expires_at, UTC):%Y-%m-%d}",
        money=money,
        roi=roi,
        png=png,
    )


def error_html(title: str, text: str) -> str:
    """A short page that says what is wrong and nothing about whose link it was."""
    return render("partner/error.html", title=title, text=text)
