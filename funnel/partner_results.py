"""What one partner's results page shows: its funnel, return, score, per campaign and cycle.

Everything comes from the functions the partner report uses (:mod:`tenants.metrics`,
:mod:`tenants.score`, :mod:`tenants.report_charts`, the report's trend chart), each asked
for this one partner in a session scoped to its tenant; nothing is computed again here.

The score card is shown as the partner may read it (``ScoreCard.own_view``): the
``leads`` component compares with the best partner without naming that partner's count.
"""

from __future__ import annotations

import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session

from partnercast.core.errors import NotFound
from partnercast.core.tenancy import session_tenant
from partnercast.funnel import report_charts as charts
from partnercast.funnel import reports
from partnercast.funnel.metrics import (
    ROI_TARGET,
    FunnelRow,
    funnel,
    partner_cycles,
    partner_metrics,
)
from partnercast.funnel.score import ScoreCard, score_partners
from partnercast.tenants.models import Partner, Tenant

NO_CYCLE = "y~"
"""The key :func:`metrics.funnel` gives results that belong to no cycle."""


@dataclass(frozen=True)
class PartnerResults:
    """One partner's numbers, and nothing of any other partner."""

    tenant_name: str
    partner_name: str
    total: FunnelRow
    campaigns: list[FunnelRow]
    cycles: list[FunnelRow]
    card: ScoreCard | None
    target: float = ROI_TARGET


def partner_results(session: Session, partner_id: int, external_id: str) -> PartnerResults:
    """The results of the partner ``partner_id`` of the session's tenant.

    ``external_id`` must match too (a link names both), so a link made for a partner whose
    row is gone never opens another partner's page. NotFound otherwise.
    """
    tenant = session.get(Tenant, session_tenant(session))
    partner = session.get(Partner, partner_id)
    if tenant is None or partner is None or partner.external_id != external_id:
        raise NotFound("no such partner")
    cards = score_partners(session, partner.external_id)
    card = cards[0] if cards and cards[0].partner_id == partner_id else None
    return PartnerResults(
        tenant_name=tenant.name,
        partner_name=partner.name,
        total=partner_metrics(session, partner_id),
        campaigns=funnel(session, by="campaign", partner_id=partner_id),
        cycles=partner_cycles(session, partner_id),
        card=card.own_view() if card is not None else None,
    )


# --- charts -----------------------------------------------------------------------------

_PYPLOT = threading.Lock()
"""pyplot keeps global state; the engine's HTTP server answers on several threads."""


@dataclass(frozen=True)
class ResultCharts:
    """The partner report's charts as PNG bytes (score is None without a score card)."""

    funnel: bytes
    roi: bytes
    trend: bytes
    score: bytes | None


def draw_charts(results: PartnerResults) -> ResultCharts:
    """The same four charts as the partner report, drawn for this partner."""
    mine = results.total
    with _PYPLOT, tempfile.TemporaryDirectory(prefix="partnercast-page-") as folder:
        out = Path(folder)
        charts.funnel_chart(mine.counts, f"{results.partner_name}: your funnel", out / "funnel.png")
        charts.return_chart(
            mine.roi_pipeline,
            mine.roi_won,
            results.target,
            "Your return on the spend",
            out / "roi.png",
        )
        trend_chart(results.cycles, "Your results per cycle", out / "trend.png")
        score = None
        if results.card is not None:
            card = results.card
            charts.score_chart(
                [(c.name, c.weight, c.points) for c in card.components],
                f"Your contender score: {card.score:.0f} / 100",
                out / "score.png",
                weakest=card.weakest.name,
            )
            score = (out / "score.png").read_bytes()
        return ResultCharts(
            funnel=(out / "funnel.png").read_bytes(),
            roi=(out / "roi.png").read_bytes(),
            trend=(out / "trend.png").read_bytes(),
            score=score,
        )


def trend_chart(cycles: list[FunnelRow], title: str, path: Path) -> None:
    """The partner report's trend chart (leads to won per cycle); public for the page."""
    reports._trend(cycles, title, path)
