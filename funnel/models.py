"""Table models of the funnel: lead stages reached, spend, rollups (and their sums per
partner), the webhook secret and the ids of the signed webhook messages accepted.

``Rollup`` rows are the funnel's running totals, one per (tenant, partner, campaign,
cycle, metric); they are kept up to date as events are flushed (see
:mod:`partnercast.funnel.rollups`), so metrics never scan the event table. An id of 0
stands for "not known" (a visit with no cycle), which keeps the unique key usable for
upserts on SQLite and PostgreSQL alike.

No time column has a default: whoever writes a row passes the instant its edge read once
(DESIGN.md, Time).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from partnercast.core.tenancy import TenantOwned, TenantOwnedUnindexed

# The tables these keys name (lead, campaign, partner, tenant) are mapped wherever these
# are used (funnel.leads imports the campaigns' and tenants' models).
from partnercast.funnel import leads as _leads  # noqa: F401


class LeadStage(TenantOwned, SQLModel, table=True):
    """A funnel stage one lead has reached, with the deal value the CRM gave for it.

    One row per (lead, stage): importing the same CRM file twice finds the row and changes
    nothing.
    """

    __table_args__ = (UniqueConstraint("lead_id", "stage"),)

    id: int | None = Field(default=None, primary_key=True)
    lead_id: int = Field(foreign_key="lead.id", index=True)
    stage: str = Field(max_length=20)
    value: float = Field(default=0.0)
    currency: str = Field(default="", max_length=3)
    counted: bool = Field(default=True)  # False: a baseline (the form already counted it)
    occurred_at: datetime
    source: str = Field(default="crm", max_length=64)
    created_at: datetime
    # The CRM's time of the record that set ``value`` (None: ``occurred_at``): a record
    # older than it changes nothing (an out-of-order "opportunity 1000" after a 5000).
    value_as_of: datetime | None = Field(default=None)


class Spend(TenantOwned, SQLModel, table=True):
    """Money the vendor put into one partner's campaign: MDF or other investment."""

    id: int | None = Field(default=None, primary_key=True)
    partner_id: int = Field(foreign_key="partner.id", index=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    amount: float
    kind: str = Field(default="mdf", max_length=20)  # mdf | other
    currency: str = Field(default="", max_length=3)
    note: str = Field(default="", max_length=500)
    created_at: datetime


class Rollup(TenantOwnedUnindexed, SQLModel, table=True):
    """A running total of one funnel metric for one partner, campaign and cycle."""

    __table_args__ = (
        UniqueConstraint("tenant_id", "partner_id", "campaign_id", "cycle_id", "metric"),
        # Covers the funnel by campaign and by cycle: summed per (campaign, cycle, metric)
        # straight off the index, without a temporary sort or a visit to the table, and
        # the other groupings without a visit to the table (bench/funnel_scale.py). The
        # funnel by partner and the score read PartnerRollup (revision 0021 replaced the
        # index on tenant, partner, metric, count, value that served them).
        Index(
            "ix_rollup_campaign_cycle",
            "tenant_id",
            "campaign_id",
            "cycle_id",
            "metric",
            "partner_id",
            "count",
            "value",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    partner_id: int = Field(default=0)
    campaign_id: int = Field(default=0)
    cycle_id: int = Field(default=0)
    metric: str = Field(max_length=40)
    count: int = Field(default=0)
    value: float = Field(default=0.0)


class PartnerRollup(TenantOwnedUnindexed, SQLModel, table=True):
    """A running total of one funnel metric for one partner, over all its campaigns and
    cycles: the sum of its :class:`Rollup` rows, kept by the same keeper in the same
    transaction (:mod:`partnercast.funnel.rollups`).

    The funnel by partner and the contender score read these (about 17 rows a partner)
    instead of summing the partner x campaign x cycle rows (64 a partner at
    bench/funnel_scale.py's scale). No coarser level (per campaign, per cycle) is kept:
    every write of a campaign would update the same row, which would serialize
    concurrent writers on PostgreSQL (the tracker's writer threads); those groupings are
    summed by the database from the :class:`Rollup` rows.
    """

    __tablename__ = "partner_rollup"
    __table_args__ = (UniqueConstraint("tenant_id", "partner_id", "metric"),)

    id: int | None = Field(default=None, primary_key=True)
    partner_id: int = Field(default=0)
    metric: str = Field(max_length=40)
    count: int = Field(default=0)
    value: float = Field(default=0.0)


class CrmSecret(TenantOwned, SQLModel, table=True):
    """The tenant's CRM webhook signing secret, Fernet-encrypted at rest."""

    __table_args__ = (UniqueConstraint("tenant_id"),)

    id: int | None = Field(default=None, primary_key=True)
    sealed: str = Field(max_length=1000)
    created_at: datetime


class WebhookMessage(TenantOwned, SQLModel, table=True):
    """A signed webhook message accepted once (Standard Webhooks' ``webhook-id``), per
    tenant: the same id again is a replay and is refused. Kept a while longer than the
    timestamp tolerance (after it, the timestamp alone refuses the message)."""

    __tablename__ = "webhook_message"
    __table_args__ = (
        UniqueConstraint("tenant_id", "message_id"),
        Index("ix_webhook_message_received", "tenant_id", "received_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(max_length=255)
    source: str = Field(max_length=40)  # crm | feedback
    sent_at: datetime  # the sender's webhook-timestamp
    received_at: datetime
