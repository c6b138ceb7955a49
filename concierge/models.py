"""Table models of concierge work: concierges, their tasks, assignments, readiness, reviews.

All are tenant-owned. None alters the Partner table: what concierge work knows about a
partner (its concierge, its readiness checklist, its reviews) lives in tables keyed by
partner, so the partner import and the concierge side never write the same row.

No time column has a default: whoever writes a row passes the instant its edge read once
(DESIGN.md, Time), so a run on a simulated clock never stamps a row with today.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from partnercast.core.tenancy import TenantOwned

# The tables these keys name (tenant, partner) are mapped wherever these are used.
from partnercast.tenants import models as _tenant_models  # noqa: F401


class Concierge(TenantOwned, SQLModel, table=True):
    """A person of the concierge agency who looks after partners in some languages."""

    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    email: str = Field(default="", max_length=254)
    languages: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime


class ConciergeTask(TenantOwned, SQLModel, table=True):
    """One piece of concierge work about one partner, made by a person or by the engine.

    ``cause_key`` names the episode that made the engine open the task (an approval
    pending since a given moment, one failed dispatch, ...). ``open_cause`` holds the same
    key while the task is open and NULL once it is closed: the unique constraint on it
    makes a second open task for the same cause impossible, even for two concurrent scans
    (NULLs never collide, on SQLite as on PostgreSQL).
    """

    __table_args__ = (
        UniqueConstraint("tenant_id", "open_cause"),
        Index("ix_conciergetask_status_due", "tenant_id", "status", "due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # None for work about the tenant as a whole (a webhook endpoint the engine disabled).
    partner_id: int | None = Field(default=None, foreign_key="partner.id", index=True)
    owner_id: int | None = Field(default=None, foreign_key="concierge.id", index=True)
    kind: str = Field(max_length=40)
    title: str = Field(default="", max_length=300)
    due_at: datetime
    # open -> in_progress -> done | dismissed
    status: str = Field(default="open", max_length=20)
    notes: str = Field(default="", sa_column=Column(Text, nullable=False))
    created_by: str = Field(default="engine", max_length=100)
    cause_key: str | None = Field(default=None, max_length=200, index=True)
    open_cause: str | None = Field(default=None, max_length=200)
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None = None


class PartnerAssignment(TenantOwned, SQLModel, table=True):
    """Which concierge looks after a partner, and in which language (one per partner)."""

    __table_args__ = (UniqueConstraint("tenant_id", "partner_id"),)

    id: int | None = Field(default=None, primary_key=True)
    partner_id: int = Field(foreign_key="partner.id")
    concierge_id: int = Field(foreign_key="concierge.id", index=True)
    language: str = Field(max_length=16)
    assigned_at: datetime


class PartnerReadiness(TenantOwned, SQLModel, table=True):
    """The partner-selection checklist of one partner; None means not assessed yet."""

    __table_args__ = (UniqueConstraint("tenant_id", "partner_id"),)

    id: int | None = Field(default=None, primary_key=True)
    partner_id: int = Field(foreign_key="partner.id")
    strategic: bool | None = None
    competent: bool | None = None
    contact: bool | None = None
    weekly_review: bool | None = None
    feedback: bool | None = None
    note: str = Field(default="", max_length=2000)
    updated_at: datetime


class Review(TenantOwned, SQLModel, table=True):
    """A weekly joint review held with a partner: its notes and the agenda it followed."""

    __table_args__ = (Index("ix_review_partner_held", "tenant_id", "partner_id", "held_at"),)

    id: int | None = Field(default=None, primary_key=True)
    partner_id: int = Field(foreign_key="partner.id")
    held_at: datetime
    notes: str = Field(default="", sa_column=Column(Text, nullable=False))
    agenda: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_by: str = Field(default="", max_length=100)
    created_at: datetime


class Thresholds(SQLModel):
    """A tenant's thresholds for concierge work, the defaults until the tenant sets its own."""

    approval_pending_days: int = Field(default=5)
    bounce_rate_threshold: float = Field(default=0.05)
    partners_per_language_cap: int = Field(default=100)
    lead_followup_hours: int = Field(default=48)
    review_interval_days: int = Field(default=7)
    task_due_days: int = Field(default=2)
    incident_window_days: int = Field(default=30)


class ConciergeSettings(TenantOwned, Thresholds, table=True):
    """The thresholds a tenant set; a tenant without a row uses the defaults."""

    __table_args__ = (UniqueConstraint("tenant_id"),)

    id: int | None = Field(default=None, primary_key=True)
    updated_at: datetime
