"""The HTML of a partner's results page and of its error page (Jinja, autoescaped).

Like web/pages.py, the templates are the engine's own and every value passed in is data.
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

from jinja2 import DictLoader, Environment, StrictUndefined

from partnercast.funnel.metrics import FunnelRow
from partnercast.funnel.partner_results import PartnerResults, ResultCharts

STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;"
    "color:#0f172a}h2{margin-top:2.5rem;border-bottom:1px solid #e2e8f0;padding-bottom:.3rem}"
    ".note{color:#475569;font-size:.9rem}.ok{color:#15803d}.no{color:#b91c1c}"
    ".figures{display:grid;grid-template-columns:repeat(auto-fill,minmax(9rem,1fr));gap:.5rem;"
    "margin:1rem 0}.figure{border:1px solid #e2e8f0;border-radius:.4rem;padding:.5rem .7rem}"
    ".figure dt{font-size:.8rem;color:#475569}.figure dd{margin:0;font-size:1.3rem;"
    "font-weight:600}.scroll{overflow-x:auto}table{border-collapse:collapse;margin:1rem 0;"
    "font-size:.85rem}td,th{border:1px solid #cbd5e1;padding:.25rem .5rem;text-align:right;"
    "white-space:nowrap}th{background:#f1f5f9}th:first-child,td:first-child,td.t,th.t{text-align:left}"
    "td.t{white-space:normal}img{max-width:100%;height:auto;display:block;margin:1rem 0}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
CSP = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; img-src data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex,nofollow">
<meta name="referrer" content="no-referrer">
<title>{{ r.partner_name }}: your results</title>
<style>{{ style }}</style>
</head>
<body>
<h1>{{ r.partner_name }}: your results with {{ r.tenant_name }}</h1>
<p class="note">Only your own numbers, as of {{ now }} UTC. This link works until {{ until }}.</p>
<p id="summary">Pipeline {{ money(t.pipeline) }}, won {{ money(t.won_value) }}, spend \
{{ money(t.spend) }}: pipeline ROI {{ roi(t.roi_pipeline) }}, won ROI {{ roi(t.roi_won) }} \
{% if t.meets_target %}<span class="ok">(meets the {{ target }}x target)</span>\
{% else %}<span class="no">(below the {{ target }}x target)</span>{% endif %}.</p>
<h2>Your funnel</h2>
<dl class="figures" id="figures">
{% for key, label, value in figures %}<div class="figure" data-figure="{{ key }}">\
<dt>{{ label }}</dt><dd>{{ value }}</dd></div>
{% endfor %}</dl>
<img id="chart-funnel" src="{{ png(charts.funnel) }}" alt="your funnel: reach and pipeline">
<h2>Your return</h2>
<p>The programme aims at marketing ROI above {{ target }}x: pipeline (or won) value over \
what was spent, market development funds included.</p>
<img id="chart-roi" src="{{ png(charts.roi) }}" alt="your return against the target">
<h2>Your contender score</h2>
{% if card %}<p id="score">Score <b>{{ "%.0f"|format(card.score) }}</b> of 100.</p>
{% if charts.score %}<img id="chart-score" src="{{ png(charts.score) }}" \
alt="your score components">{% endif %}
<div class="scroll"><table id="components"><tr><th>component</th><th>group</th>\
<th>weight</th><th>points</th><th class="t">why</th></tr>
{% for c in card.components %}<tr><td>{{ c.name }}</td><td>{{ c.group }}</td>\
<td>{{ "%.0f"|format(c.weight) }}</td><td>{{ "%.1f"|format(c.points) }}</td>\
<td class="t">{{ c.detail }}</td></tr>
{% endfor %}</table></div>
<p id="holds-back">What holds you back: <b>{{ card.weakest.name }}</b> \
({{ card.weakest.detail }}), {{ "%.1f"|format(card.weakest.lost) }} of \
{{ "%.0f"|format(card.weakest.weight) }} points lost. What to do: {{ card.weakest.advice }}.</p>
{% else %}<p>No score yet.</p>
{% endif %}<h2>Per campaign</h2>
{{ table("campaigns", "campaign", r.campaigns, True) }}
<h2>Per cycle</h2>
<img id="chart-trend" src="{{ png(charts.trend) }}" alt="your results per cycle">
{{ table("cycles", "cycle", r.cycles, False) }}
</body>
</html>
"""

TABLE = """{% macro table(id, first, rows, spend) %}<div class="scroll"><table id="{{ id }}">
<tr><th>{{ first }}</th>{% for _, label in columns %}<th>{{ label }}</th>{% endfor %}\
<th>pipeline</th><th>won value</th>{% if spend %}<th>spend</th><th>ROI</th>{% endif %}</tr>
{% for row in rows %}<tr><td>{{ row.label }}</td>{% for key, _ in columns %}\
<td>{{ "{:,}".format(row.counts.get(key, 0)) }}</td>{% endfor %}<td>{{ money(row.pipeline) }}</td>\
<td>{{ money(row.won_value) }}</td>{% if spend %}<td>{{ money(row.spend) }}</td>\
<td>{{ roi(row.roi_pipeline) }}</td>{% endif %}</tr>
{% else %}<tr><td class="t" colspan="{{ columns|length + (5 if spend else 3) }}">\
nothing yet</td></tr>
{% endfor %}</table></div>{% endmacro %}"""

ERROR = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">
<title>{{ title }}</title></head>
<body><h1>{{ title }}</h1><p>{{ text }}</p></body></html>
"""

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


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=DictLoader(
            {
                "page": "{% from 'table' import table with context %}" + PAGE,
                "table": TABLE,
                "error": ERROR,
            }
        ),
        autoescape=True,
        undefined=StrictUndefined,
    )


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


def page_html(view: PageView) -> str:
    """The whole results page."""
    r = view.results
    return (
        _environment()
        .get_template("page")
        .render(
            r=r,
            t=r.total,
            card=r.card,
            charts=view.charts,
            target=f"{r.target:.0f}",
            figures=figures(r.total),
            columns=FIGURES,
            style=STYLE,
            now=f"{datetime.now(UTC):%Y-%m-%d %H:%M}",
            until=f"{datetime.fromtimestamp(view.expires_at, UTC):%Y-%m-%d}",
            money=money,
            roi=roi,
            png=png,
        )
    )


def error_html(title: str, text: str) -> str:
    """A short page that says what is wrong and nothing about whose link it was."""
    return _environment().get_template("error").render(title=title, text=text)
