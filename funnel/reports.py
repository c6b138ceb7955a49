"""The programme report for the vendor and one report per partner: HTML, PNG charts, CSV.

A partner's report is built only from :func:`partner_metrics`, its own score card and its
own cycles, so it cannot carry another partner's numbers or name. The vendor's report has
every partner.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlmodel import Session, col, select

from partnercast.core.errors import NotFound
from partnercast.core.tenancy import session_tenant
from partnercast.core.timeutil import as_utc
from partnercast.funnel import report_charts as charts
from partnercast.funnel.metrics import (
    CHANNEL_VALUES,
    FUNNEL,
    ROI_TARGET,
    FunnelRow,
    funnel,
    partner_cycles,
    partner_metrics,
    total,
)
from partnercast.funnel.score import ScoreCard, score_partners
from partnercast.plugins import spreadsheet
from partnercast.tenants.models import Partner, Tenant
from partnercast.tenants.partners import get_partner

# Read on a phone too (390 CSS pixels): every table scrolls inside its own box, long words
# (a partner's name, a URL) break instead of widening the page, images shrink to fit.
_STYLE = """body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;
color:#0f172a;overflow-wrap:anywhere}h2{margin-top:2.5rem;border-bottom:1px solid #e2e8f0;
padding-bottom:.3rem}ul.partners{columns:16rem;padding-left:1.2rem}
.scroll{overflow-x:auto}table{border-collapse:collapse;margin:1rem 0;font-size:.85rem}
td,th{border:1px solid #cbd5e1;padding:.25rem .5rem;text-align:right;white-space:nowrap}
th{background:#f1f5f9}th:first-child,td:first-child,td.t,th.t{text-align:left}td.t{white-space:normal}
img{max-width:100%;display:block;margin:1rem 0}.ok{color:#15803d}.no{color:#b91c1c}
.note{color:#475569;font-size:.9rem}"""

REACH_COLUMNS: tuple[str, ...] = ("sent", "delivered", "bounced", "unsubscribed", "opened")
REACH_COLUMNS += ("clicked", "visits", "forms")
CHANNEL_COLUMNS = ("impressions", "engagements", "link_clicks")
PIPELINE_COLUMNS = ("leads", "mql", "sql", "opportunity", "won", "lost")


@dataclass(frozen=True)
class ReportFiles:
    programme: Path
    partners: dict[str, Path]
    missing_glyphs: frozenset[str] = frozenset()
    """Characters of names the charts drew as boxes: no installed font has them."""


def write_reports(
    session: Session,
    out: Path,
    *,
    now: datetime,
    on_progress: Callable[[int, int], None] | None = None,
) -> ReportFiles:
    """Write the vendor's report and every partner's into ``out`` (created if needed),
    stamped as written at ``now``; ``on_progress(done, total)`` after each report."""
    tenant = session.get(Tenant, session_tenant(session))
    if tenant is None:
        raise NotFound("the session's tenant does not exist")
    out.mkdir(parents=True, exist_ok=True)
    charts.take_missing_glyphs()  # only this report's
    rows = funnel(session, by="partner")
    cards = score_partners(session)
    everyone = list(session.exec(select(Partner).order_by(col(Partner.external_id))).all())
    programme = _programme(session, tenant, rows, cards, out, now, everyone)
    if on_progress:
        on_progress(1, len(everyone) + 1)
    partners: dict[str, Path] = {}
    by_id = {card.partner_id: card for card in cards}
    for done, partner in enumerate(everyone, start=2):
        folder = out / "partners" / _safe(partner.external_id)
        partners[partner.external_id] = _partner_report(
            session, tenant, partner, by_id.get(partner.id or 0), folder, now
        )
        if on_progress:
            on_progress(done, len(everyone) + 1)
    return ReportFiles(programme, partners, frozenset(charts.take_missing_glyphs()))


def write_partner_report(session: Session, external_id: str, out: Path, *, now: datetime) -> Path:
    """Write one partner's report only, into ``out`` itself, stamped as written at ``now``:
    a folder to hand that partner, holding nothing of the programme or of another partner."""
    tenant = session.get(Tenant, session_tenant(session))
    if tenant is None:
        raise NotFound("the session's tenant does not exist")
    partner = get_partner(session, external_id, where="--partner")
    cards = score_partners(session, partner.external_id)
    return _partner_report(session, tenant, partner, cards[0] if cards else None, out, now)


def write_programme_report(
    session: Session,
    out: Path,
    *,
    now: datetime,
    partner_href: Callable[[Partner], str] | None = None,
) -> Path:
    """Write the vendor's programme report only (its page, charts and CSVs, no partner's
    own report) into ``out``, stamped as written at ``now``; its list of partners links each
    to ``partner_href(partner)`` (by default where :func:`write_reports` puts that report)."""
    tenant = session.get(Tenant, session_tenant(session))
    if tenant is None:
        raise NotFound("the session's tenant does not exist")
    out.mkdir(parents=True, exist_ok=True)
    everyone = list(session.exec(select(Partner).order_by(col(Partner.external_id))).all())
    rows = funnel(session, by="partner")
    return _programme(
        session, tenant, rows, score_partners(session), out, now, everyone, partner_href
    )


PROGRAMME_CSV = ("funnel", "cycles", "scores")
"""The programme report's data files, as ``<name>.csv`` beside its page."""


def write_programme_csv(session: Session, name: str, path: Path) -> Path:
    """Write one of the programme report's data files (:data:`PROGRAMME_CSV`) to ``path``,
    as :func:`write_reports` writes it (formulas neutralised by plugins.spreadsheet)."""
    if name == "funnel":
        rows = funnel(session, by="partner")
        _write_funnel_csv(path, [*rows, total(rows)])
    elif name == "cycles":
        _write_cycles_csv(path, funnel(session, by="cycle"))
    elif name == "scores":
        _write_scores_csv(path, score_partners(session))
    else:
        raise NotFound(f"no programme data file {name!r}: {', '.join(PROGRAMME_CSV)}")
    return path


def _programme(
    session: Session,
    tenant: Tenant,
    rows: list[FunnelRow],
    cards: list[ScoreCard],
    out: Path,
    now: datetime,
    partners: list[Partner],
    partner_href: Callable[[Partner], str] | None = None,
) -> Path:
    overall = total(rows)
    cycles = funnel(session, by="cycle")
    charts.funnel_chart(overall.counts, f"{tenant.name}: programme funnel", out / "funnel.png")
    charts.roi_chart(
        [row.label for row in rows],
        [row.roi_pipeline for row in rows],
        ROI_TARGET,
        "Marketing ROI per partner (pipeline value / spend)",
        out / "roi.png",
    )
    top = cards[:15]
    charts.score_stack_chart(
        [
            (
                f"{card.external_id} {card.name}",
                [(c.name, c.weight, c.points) for c in card.components],
            )
            for card in top
        ],
        f"Contender score: the {len(top)} highest, component by component",
        out / "scores.png",
    )
    _trend(cycles, "Programme results per cycle", out / "trend.png")
    _write_funnel_csv(out / "funnel.csv", [*rows, overall])
    _write_cycles_csv(out / "cycles.csv", cycles)
    _write_scores_csv(out / "scores.csv", cards)
    met = sum(1 for row in rows if row.meets_target)
    body = [
        f"<h1>{html.escape(tenant.name)}: programme report</h1>",
        f'<p class="note">Written {as_utc(now):%Y-%m-%d %H:%M} UTC. ROI target: {ROI_TARGET:.0f}x. '
        f"{len(rows)} partners with results, {met} meeting the target.</p>",
        _summary(overall),
        "<h2>The funnel</h2>",
        '<img src="funnel.png" alt="programme funnel: reach and pipeline">',
        "<h2>Return on marketing spend</h2>",
        '<img src="roi.png" alt="ROI per partner against the target">',
        "<h2>Contenders</h2>",
        '<img src="scores.png" alt="contender scores by component">',
        _scores_table(cards),
        "<h2>Across cycles</h2>",
        '<img src="trend.png" alt="results per cycle">',
        "<h2>Every partner's numbers</h2>",
        *_funnel_tables([*rows, overall]),
        '<p>Data: <a href="funnel.csv">funnel.csv</a>, <a href="cycles.csv">cycles.csv</a>, '
        '<a href="scores.csv">scores.csv</a></p>',
        "<h2>Each partner's own report</h2>",
        _partner_links(partners, partner_href),
    ]
    return _page(out / "index.html", f"{tenant.name} programme report", body)


def _partner_report(
    session: Session,
    tenant: Tenant,
    partner: Partner,
    card: ScoreCard | None,
    folder: Path,
    now: datetime,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    card = card.own_view() if card is not None else None  # no other partner's numbers
    mine = partner_metrics(session, partner.id or 0)
    cycles = partner_cycles(session, partner.id or 0)
    charts.funnel_chart(mine.counts, f"{partner.name}: your funnel", folder / "funnel.png")
    charts.return_chart(
        mine.roi_pipeline, mine.roi_won, ROI_TARGET, "Your return on the spend", folder / "roi.png"
    )
    _trend(cycles, "Your results per cycle", folder / "trend.png")
    _write_funnel_csv(folder / "funnel.csv", [mine])
    _write_cycles_csv(folder / "cycles.csv", cycles)
    body = [
        f"<h1>{html.escape(partner.name)}: your results with {html.escape(tenant.name)}</h1>",
        f'<p class="note">Written {as_utc(now):%Y-%m-%d %H:%M} UTC. Only your own numbers.</p>',
        _summary(mine),
        "<h2>Your funnel</h2>",
        '<img src="funnel.png" alt="your funnel: reach and pipeline">',
        "<h2>Your return</h2>",
        '<img src="roi.png" alt="your return against the target">',
    ]
    if card is not None:
        charts.score_chart(
            [(c.name, c.weight, c.points) for c in card.components],
            f"Your contender score: {card.score:.0f} / 100",
            folder / "score.png",
            weakest=card.weakest.name,
        )
        _write_scores_csv(folder / "score.csv", [card])
        body += [
            "<h2>Your contender score</h2>",
            '<img src="score.png" alt="your score components">',
            _components_table(card),
        ]
    body += [
        "<h2>Across cycles</h2>",
        '<img src="trend.png" alt="your results per cycle">',
        "<h2>Your numbers</h2>",
        *_funnel_tables([mine]),
        '<p>Data: <a href="funnel.csv">funnel.csv</a>, <a href="cycles.csv">cycles.csv</a></p>',
    ]
    return _page(folder / "index.html", f"{partner.name} report", body)


def _partner_folder(external_id: str) -> str:
    """Where a partner's report is, relative to the programme report."""
    return f"partners/{_safe(external_id)}/index.html"


def _partner_links(
    partners: list[Partner], partner_href: Callable[[Partner], str] | None = None
) -> str:
    """A link to every partner's report (to hand it over, or to read it as they will)."""
    href = partner_href or (lambda p: _partner_folder(p.external_id))
    items = "".join(
        f'<li><a href="{html.escape(href(p))}">'
        f"{html.escape(p.external_id)} {html.escape(p.name)}</a></li>"
        for p in partners
    )
    return f'<ul class="partners">{items}</ul>'


def _trend(cycles: list[FunnelRow], title: str, path: Path) -> None:
    named = [row for row in cycles if row.key != "y~"]
    loose = sum(row.counts["leads"] for row in cycles if row.key == "y~")
    noun = "lead" if loose == 1 else "leads"
    verb = "is" if loose == 1 else "are"
    note = f"{loose} {noun} not attributed to a cycle {verb} left out" if loose else ""
    charts.trend_chart(
        [row.label for row in named],
        {
            "leads": [row.counts["leads"] for row in named],
            "MQL": [row.counts["mql"] for row in named],
            "SQL": [row.counts["sql"] for row in named],
            "opportunities": [row.counts["opportunity"] for row in named],
            "won": [row.counts["won"] for row in named],
        },
        title,
        path,
        note=note,
    )


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _roi(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}x"


def _summary(row: FunnelRow) -> str:
    mark = (
        '<span class="ok">meets the 20x target</span>'
        if row.meets_target
        else '<span class="no">below the 20x target</span>'
    )
    return (
        f"<p>Pipeline {_money(row.pipeline)}, won {_money(row.won_value)}, spend "
        f"{_money(row.spend)}: pipeline ROI {_roi(row.roi_pipeline)}, won ROI "
        f"{_roi(row.roi_won)} ({mark}).</p>"
    )


def _funnel_tables(rows: list[FunnelRow]) -> list[str]:
    """Reach (with the networks' numbers when there are any) and pipeline with return:
    two tables that fit a page instead of one twenty columns wide."""
    social = any(row.has_channel_metrics for row in rows)
    reach = [*REACH_COLUMNS, *(CHANNEL_COLUMNS if social else ())]
    head = "".join(f"<th>{html.escape(_heading(m))}</th>" for m in reach)
    if social:
        head += "<th>ad cost</th>"
    lines = [f'<div class="scroll"><table><tr><th>reach</th>{head}</tr>']
    for row in rows:
        cells = "".join(f"<td>{row.counts.get(m, 0):,}</td>" for m in reach)
        if social:
            cells += f"<td>{row.ad_cost:,.2f}</td>"
        lines.append(f"<tr><td>{html.escape(row.label)}</td>{cells}</tr>")
    first = "".join(lines) + "</table></div>"
    head = "".join(f"<th>{_heading(m)}</th>" for m in PIPELINE_COLUMNS)
    head += "<th>MQL to SQL</th><th>pipeline</th><th>won value</th><th>spend</th><th>ROI</th>"
    lines = [f'<div class="scroll"><table><tr><th>pipeline</th>{head}</tr>']
    for row in rows:
        cells = "".join(f"<td>{row.counts.get(m, 0):,}</td>" for m in PIPELINE_COLUMNS)
        rate = row.rate("sql", "mql")
        mark = "" if row.roi_pipeline is None else (" ✓" if row.meets_target else " ✗")
        css = (
            ""
            if row.roi_pipeline is None
            else (' class="ok"' if row.meets_target else ' class="no"')
        )
        lines.append(
            f"<tr><td>{html.escape(row.label)}</td>{cells}"
            f"<td>{'-' if rate is None else f'{rate:.0%}'}</td><td>{_money(row.pipeline)}</td>"
            f"<td>{_money(row.won_value)}</td><td>{_money(row.spend)}</td>"
            f"<td{css}>{_roi(row.roi_pipeline)}{mark}</td></tr>"
        )
    return [first, "".join(lines) + "</table></div>"]


def _heading(metric: str) -> str:
    return {
        "unsubscribed": "unsub.",
        "visits": "page visits",
        "forms": "form fills",
        "mql": "MQL",
        "sql": "SQL",
        "opportunity": "opport.",
        "engagements": "engaged",
        "link_clicks": "network clicks",
    }.get(metric, metric)


def _scores_table(cards: list[ScoreCard]) -> str:
    lines = [
        '<div class="scroll"><table><tr><th>partner</th><th>score</th>'
        '<th class="t">what holds it back</th></tr>'
    ]
    for card in cards:
        lines.append(
            f"<tr><td>{html.escape(card.external_id)} {html.escape(card.name)}</td>"
            f'<td>{card.score:.0f}</td><td class="t">{html.escape(card.weakest.name)}: '
            f"{html.escape(card.weakest.detail)}</td></tr>"
        )
    return "".join(lines) + "</table></div>"


def _components_table(card: ScoreCard) -> str:
    lines = [
        '<div class="scroll"><table><tr><th>component</th><th>weight</th><th>points</th>'
        '<th class="t">why</th></tr>'
    ]
    for c in card.components:
        lines.append(
            f"<tr><td>{html.escape(c.name)}</td><td>{c.weight:.0f}</td><td>{c.points:.1f}</td>"
            f'<td class="t">{html.escape(c.detail)}</td></tr>'
        )
    lines.append("</table></div>")
    weakest = card.weakest
    lines.append(
        f"<p>What holds you back: <b>{html.escape(weakest.name)}</b> "
        f"({html.escape(weakest.detail)}), {weakest.lost:.1f} of {weakest.weight:.0f} points "
        f"lost. What to do: {html.escape(weakest.advice)}.</p>"
    )
    return "".join(lines)


def _page(path: Path, title: str, body: list[str]) -> Path:
    path.write_text(
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><title>'
        f"{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        + "\n".join(body)
        + "</body></html>",
        encoding="utf-8",
    )
    return path


def _write_funnel_csv(path: Path, rows: list[FunnelRow]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = spreadsheet.writer(handle)
        writer.writerow(
            [
                "group",
                *FUNNEL,
                *CHANNEL_VALUES,
                "pipeline",
                "won_value",
                "spend",
                "roi_pipeline",
                "roi_won",
                "meets_20x",
            ]
        )
        for row in rows:
            writer.writerow(
                [
                    row.label,
                    *(row.counts.get(m, 0) for m in FUNNEL),
                    *(round(row.values.get(m, 0.0), 2) for m in CHANNEL_VALUES),
                    row.pipeline,
                    row.won_value,
                    "" if row.spend is None else row.spend,
                    "" if row.roi_pipeline is None else round(row.roi_pipeline, 3),
                    "" if row.roi_won is None else round(row.roi_won, 3),
                    row.meets_target,
                ]
            )


def _write_cycles_csv(path: Path, rows: list[FunnelRow]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = spreadsheet.writer(handle)
        writer.writerow(["cycle", *FUNNEL, *CHANNEL_VALUES, "pipeline", "won_value"])
        for row in rows:
            writer.writerow(
                [
                    row.label,
                    *(row.counts.get(m, 0) for m in FUNNEL),
                    *(round(row.values.get(m, 0.0), 2) for m in CHANNEL_VALUES),
                    row.pipeline,
                    row.won_value,
                ]
            )


def _write_scores_csv(path: Path, cards: list[ScoreCard]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = spreadsheet.writer(handle)
        writer.writerow(
            ["partner", "score", "component", "group", "weight", "value", "points", "detail"]
        )
        for card in cards:
            for c in card.components:
                writer.writerow(
                    [
                        card.external_id,
                        card.score,
                        c.name,
                        c.group,
                        c.weight,
                        round(c.value, 4),
                        c.points,
                        c.detail,
                    ]
                )


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "_"
