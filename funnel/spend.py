"""Spend: market development funds (MDF) and other investment per partner and campaign."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from partnercast.campaigns.models import Campaign
from partnercast.core.bounds import MIN_SPEND, check_amount
from partnercast.core.errors import NotFound, UserError
from partnercast.funnel.models import Spend
from partnercast.funnel.names import SPEND_KINDS
from partnercast.tenants.partners import get_partner

KINDS = SPEND_KINDS
"""The kinds of spend (kept in funnel.names, which the CLI's help reads)."""


def add_spend(
    session: Session,
    partner_external_id: str,
    campaign_key: str,
    amount: float,
    *,
    kind: str = "mdf",
    currency: str = "",
    note: str = "",
    now: datetime,
) -> Spend:
    """Record an investment in one partner's campaign."""
    if kind not in KINDS:
        raise UserError(f"kind must be one of {', '.join(KINDS)}", where="--kind")
    amount = check_amount(amount, where="AMOUNT", minimum=MIN_SPEND)
    partner = get_partner(session, partner_external_id)
    campaign = session.exec(select(Campaign).where(Campaign.key == campaign_key)).first()
    if campaign is None:
        raise NotFound(f"no campaign {campaign_key!r}")
    row = Spend(
        partner_id=partner.id or 0,
        campaign_id=campaign.id or 0,
        amount=amount,
        kind=kind,
        currency=currency.upper()[:3],
        note=note[:500],
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def list_spend(session: Session, *, partner_id: int | None = None) -> list[Spend]:
    """The tenant's spend rows (one partner's with ``partner_id``), oldest first."""
    query = select(Spend)
    if partner_id is not None:
        query = query.where(Spend.partner_id == partner_id)
    return list(session.exec(query.order_by(col(Spend.id))).all())
