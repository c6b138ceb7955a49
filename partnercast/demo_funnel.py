"""The demo's results: MDF spend per partner, lead stages from a CRM export, and the
programme and partner reports (HTML with charts, and CSV)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from partnercast.campaigns import approval
from partnercast.campaigns.models import Enrollment
from partnercast.campaigns.store import get_campaign
from partnercast.core.tenancy import tenant_session
from partnercast.demo_data import write_csv
from partnercast.tenants.crm_import import import_leads
from partnercast.tenants.models import Partner
from partnercast.tenants.reports import ReportFiles, write_reports
from partnercast.tenants.spend import add_spend

MDF_BY_TIER = {"gold": 4000.0, "silver": 2000.0, "registered": 750.0}
STAGES = ("mql", "sql", "opportunity", "won")


def record_results(
    engine: Engine, tenant_id: int, folder: Path, campaign_key: str, cycle_start: datetime
) -> int:
    """Spend for every approved partner, then a CRM export of lead stages; returns rows.

    Each row is dated (``occurred_at``) between the first email and the cycle's last week,
    so every lead belongs to the cycle and the per-cycle funnel, trend and chart have data.
    """
    rng = random.Random(45)
    rows: list[dict[str, str]] = []
    with tenant_session(engine, tenant_id) as session:
        campaign = get_campaign(session, campaign_key)
        approved = session.exec(
            select(Partner)
            .join(Enrollment, col(Enrollment.partner_id) == Partner.id)
            .where(Enrollment.campaign_id == campaign.id, Enrollment.state == approval.APPROVED)
            .order_by(col(Partner.external_id))
        ).all()
        for partner in approved:
            add_spend(
                session, partner.external_id, campaign_key, MDF_BY_TIER.get(partner.tier, 500.0)
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
                        "occurred_at": _during(cycle_start, rng).isoformat(),
                    }
                )
    if not rows:
        return 0
    export = write_csv(folder / "crm-export.csv", rows)
    with tenant_session(engine, tenant_id) as session:
        report = import_leads(session, export)
    return report.kept


def _during(cycle_start: datetime, rng: random.Random) -> datetime:
    """A moment after the first email and before the cycle's last week."""
    return cycle_start + timedelta(days=rng.randint(3, 38), hours=rng.randint(0, 8))


def write_all_reports(engine: Engine, tenant_id: int, folder: Path) -> ReportFiles:
    with tenant_session(engine, tenant_id) as session:
        return write_reports(session, folder / "reports")
