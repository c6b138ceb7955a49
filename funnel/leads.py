"""Leads: people who asked a partner to contact them, and where they came from.

A Lead belongs to one tenant and one partner; campaign, enrollment, touch and cycle say
which campaign brought it, where the engine knows. It starts at stage ``lead`` and moves
through the funnel (mql, sql, opportunity, won, lost). The consent the person gave is kept
word for word, with the page's locale, because "they ticked a box" proves nothing later.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint, func, update
from sqlmodel import Field, Session, SQLModel, col

# The tables these keys name (tenant, partner, campaign, touch, ...) are mapped wherever
# these are used (campaigns.models imports the tenants' models).
from partnercast.campaigns import models as _campaign_models  # noqa: F401
from partnercast.core.tenancy import TenantOwned

STAGES = ("lead", "mql", "sql", "opportunity", "won", "lost")


class LeadBase(SQLModel):
    """What a person tells the partner about themselves."""

    email: str = Field(max_length=254)
    name: str = Field(max_length=200)
    company: str = Field(default="", max_length=200)
    message: str = Field(default="", max_length=4000)


class Lead(TenantOwned, LeadBase, table=True):
    """A lead of one partner, attributed to a campaign, touch and cycle where known."""

    __table_args__ = (
        Index("ix_lead_partner_stage", "tenant_id", "partner_id", "stage"),
        # The partner's CRM's own id for the lead: how CRM records find it again even after
        # its email changed. NULL for leads the CRM has not spoken of (NULLs never clash).
        UniqueConstraint("tenant_id", "partner_id", "crm_id", name="uq_lead_crm_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    partner_id: int = Field(foreign_key="partner.id", index=True)
    campaign_id: int | None = Field(default=None, foreign_key="campaign.id")
    enrollment_id: int | None = Field(default=None, foreign_key="enrollment.id")
    touch_id: int | None = Field(default=None, foreign_key="touch.id")
    cycle_id: int | None = Field(default=None, foreign_key="cycle.id")
    consent: bool = Field(default=False)
    consent_text: str = Field(default="", max_length=1000)
    locale: str = Field(default="en", max_length=16)
    stage: str = Field(default="lead", max_length=20)
    source: str = Field(default="microsite", max_length=64)
    crm_id: str | None = Field(default=None, max_length=100)
    utm: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime
    stage_changed_at: datetime


def add_lead(session: Session, *, lead: Lead) -> Lead:
    """Add ``lead`` in the session's tenant and give it its id."""
    session.add(lead)
    session.flush()
    return lead


def erase_leads(session: Session, address: str, now: datetime) -> int:
    """Erase a person from the session's tenant's leads, on their request: every lead with
    the (normalised) ``address`` loses its email, name, company and message; its stage,
    attribution and dates stay, so the partner's funnel keeps counting it. The
    :data:`~partnercast.tenants.suppressions.Eraser` that ``contacts erase`` is handed.
    ``now`` is unused: a lead keeps no erasure date (the tenant's Erasure row has it)."""
    result = session.execute(
        update(Lead)
        .where(func.lower(col(Lead.email)) == address)
        .values(email="", name="", company="", message="")
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
