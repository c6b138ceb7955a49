"""The demo's results: MDF spend per partner, lead stages from a CRM export, and the
programme and partner reports (HTML with charts, and CSV)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from partnercast.campaigns import approval
from partnercast.campaigns.models import Cycle, Enrollment
from partnercast.campaigns.store import get_campaign
from partnercast.core.tenancy import tenant_session
from partnercast.core.timeutil import as_utc
from partnercast.demo.data import write_csv
from partnercast.funnel.crm_import import import_leads
from partnercast.funnel.reports import ReportFiles, write_reports
from partnercast.funnel.spend import add_spend
from partnercast.tenants.models import Partner

MDF_BY_TIER = {"gold": 4000.0, "silver": 2000.0, "registered": 750.0}
STAGES = ("mql", "sql", "opportunity", "won")


def record_results(
    engine: Engine, tenant_id: int, folder: Path, campaign_key: str, now: datetime
) -> int:
    """Spend for every approved partner, then a CRM export of lead stages, recorded at
    ``now``; returns rows.

    Each row is dated (``occurred_at``) inside a cycle of the campaign, so every lead
    belongs to one and the per-cycle funnel, the trend chart and the score's trend
    component have data: the first cycle's leads between its first email and its last
    week, the second (running) cycle's in its first days. Partners with a middling score
    pick up in the second cycle, the contenders slow down a little, the rest stay quiet.
    """
    rng = random.Random(45)
    rows: list[dict[str, str]] = []
    with tenant_session(engine, tenant_id) as session:
        campaign = get_campaign(session, campaign_key)
        cycles = session.exec(
            select(Cycle).where(Cycle.campaign_id == campaign.id).order_by(col(Cycle.number))
        ).all()
        approved = session.exec(
            select(Partner)
            .join(Enrollment, col(Enrollment.partner_id) == Partner.id)
            .where(Enrollment.campaign_id == campaign.id, Enrollment.state == approval.APPROVED)
            .order_by(col(Partner.external_id))
        ).all()
        for partner in approved:
            add_spend(
                session,
                partner.external_id,
                campaign_key,
                MDF_BY_TIER.get(partner.tier, 500.0),
                now=now,
            )
            # A few partners convert far better than the rest: the contenders.
            leads = rng.randint(0, 3) + (6 if partner.score >= 80 else 0)
            for number in range(leads):
                stage = rng.choices(STAGES, weights=(5, 3, 2, 1))[0]
                value = rng.choice((0, 18_000, 42_000, 95_000)) if stage in STAGES[2:] else 0
                rows.append(
                    {
                        "partner": partner.external_id,
                        "stage": stage,
                        "email": f"buyer{number}@{partner.external_id.lower()}-customer.example",
                        "campaign": campaign_key,
                        "deal_value": str(value) if value else "",
                        "occurred_at": _during(as_utc(cycles[0].starts_at), rng).isoformat(),
                    }
                )
            if len(cycles) > 1:
                rows += _second_cycle_rows(partner, campaign_key, as_utc(cycles[1].starts_at), rng)
    if not rows:
        return 0
    export = write_csv(folder / "crm-export.csv", rows)
    with tenant_session(engine, tenant_id) as session:
        report = import_leads(session, export, now=now)
    return report.kept


def _second_cycle_rows(
    partner: Partner, campaign_key: str, starts_at: datetime, rng: random.Random
) -> list[dict[str, str]]:
    if partner.score >= 80:
        leads = rng.randint(5, 8)
    elif partner.score >= 55:
        leads = rng.randint(2, 6)
    else:
        leads = rng.randint(0, 1)
    return [
        {
            "partner": partner.external_id,
            "stage": rng.choices(STAGES[:3], weights=(6, 3, 1))[0],
            "email": f"c2-buyer{number}@{partner.external_id.lower()}-customer.example",
            "campaign": campaign_key,
            "occurred_at": (starts_at + timedelta(days=1, hours=rng.randint(1, 60))).isoformat(),
        }
        for number in range(leads)
    ]


def _during(cycle_start: datetime, rng: random.Random) -> datetime:
    """A moment after the first email and before the cycle's last week."""
    return cycle_start + timedelta(days=rng.randint(3, 38), hours=rng.randint(0, 8))


def write_all_reports(engine: Engine, tenant_id: int, folder: Path, now: datetime) -> ReportFiles:
    with tenant_session(engine, tenant_id) as session:
        return write_reports(session, folder / "reports", now=now)
