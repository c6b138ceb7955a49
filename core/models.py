"""The dispatch outbox and the event log: the core's own tables.

A Dispatch is one scheduled publication of one touch for one partner in one cycle; its
idempotency key makes re-planning a no-op. A Delivery is one message to one contact; the
unique (dispatch, contact) pair is the ledger that keeps a re-tick from sending twice.

No time column has a default: whoever writes a row passes the instant its edge read once
(DESIGN.md, Time). A default would be the wall clock, read deep in library code, and a
run on a simulated clock (``tick(now)``, ``--now``) would stamp rows with today instead.
Required, a forgotten instant is a type error (a missing argument) and, through a plain
INSERT too, a NOT NULL violation: it cannot pass silently.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import JSON, Column, ForeignKeyConstraint, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from partnercast.core.tenancy import TenantOwnedByParents, TenantOwnedUnindexed

HELD_FOR_APPROVAL = "approval"
"""Dispatch.held_for: pending, due, but the partner has not approved (yet); rechecked
later (campaigns/dispatching.py) and made due at once when the approval comes
(campaigns/approval.py ``release_approved``)."""
HELD_FOR_RECONNECT = "reconnect"
"""Dispatch.held_for: failed because the partner's channel account was refused, flagged or
missing; resumed when the account is reconnected (core/accounts.py ``resume_held``)."""


class Dispatch(TenantOwnedUnindexed, SQLModel, table=True):
    """One publication of one touch for one partner in one cycle."""

    __table_args__ = (
        UniqueConstraint("enrollment_id", "touch_id", "cycle_id"),
        Index("ix_dispatch_due", "state", "scheduled_at"),
        Index("ix_dispatch_lease", "state", "lease_until"),
        Index("ix_dispatch_state_partner", "tenant_id", "state", "partner_id"),
        # What the ledger's composite foreign key refers to (revision 0025); it also
        # serves every lookup by the tenant alone.
        Index("uq_dispatch_tenant_id", "tenant_id", "id", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=128, unique=True)
    enrollment_id: int = Field(foreign_key="enrollment.id", index=True)
    touch_id: int = Field(foreign_key="touch.id")
    cycle_id: int = Field(foreign_key="cycle.id", index=True)
    partner_id: int = Field(foreign_key="partner.id", index=True)
    channel: str = Field(max_length=64)
    scheduled_at: datetime
    # pending -> running -> done | failed ; pending -> skipped (no approval at send time)
    state: str = Field(default="pending", max_length=20)
    # Why the dispatch is held, if it is (HELD_FOR_APPROVAL, HELD_FOR_RECONNECT), else "":
    # an explicit marker, so that nothing has to recognise a hold by the text of last_error.
    held_for: str = Field(default="", max_length=20, sa_column_kwargs={"server_default": ""})
    attempts: int = Field(default=0)
    last_error: str = Field(default="", max_length=2000)
    external_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    sent_count: int = Field(default=0)
    suppressed_count: int = Field(default=0)
    failed_count: int = Field(default=0)
    created_at: datetime
    finished_at: datetime | None = None
    # The lease of the worker running it (core.outbox.claim_due): every write a worker
    # makes to a claimed dispatch is fenced on (lease_owner, lease_until); an expired
    # lease makes the dispatch claimable again, so abandoned work is taken over.
    lease_owner: str | None = Field(default=None, max_length=128)
    lease_until: datetime | None = None
    claimed_at: datetime | None = None
    # Set (and committed) just before a non-audience channel is asked to publish: with no
    # external ids, it says an earlier attempt may have posted, so the network is asked
    # (Channel.find_published) before posting again.
    publish_started_at: datetime | None = None


class Delivery(TenantOwnedByParents, SQLModel, table=True):
    """One message of one dispatch to one contact: the per-contact delivery ledger."""

    __table_args__ = (
        UniqueConstraint("dispatch_id", "contact_id"),
        # A delivery belongs to its dispatch's tenant and to its contact's: two composite
        # foreign keys, which also stand for the one on the tenant (each parent has its
        # own). PostgreSQL checks a foreign key with a trigger a row, about 5 us each, and
        # the ledger is its hottest insert (revision 0025).
        ForeignKeyConstraint(
            ["tenant_id", "dispatch_id"],
            ["dispatch.tenant_id", "dispatch.id"],
            name="fk_delivery_dispatch_tenant",
        ),
        ForeignKeyConstraint(
            ["tenant_id", "contact_id"],
            ["contact.tenant_id", "contact.id"],
            name="fk_delivery_contact_tenant",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    # Found through the unique (dispatch_id, contact_id) index: no index of its own.
    dispatch_id: int
    contact_id: int = Field(index=True)
    email: str = Field(max_length=254)
    # pending -> sending (on the wire, outcome not yet noted) -> sent | bounced | failed;
    # suppressed is final from the start; uncertain is final (at-most-once tenants): the
    # message was on the wire when its worker died, and is not sent again.
    state: str = Field(default="pending", max_length=20)
    # True when the message may have reached the contact before a crash: resent with the
    # same Message-ID (at least once, the default) or left alone (at most once).
    uncertain: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    message_id: str = Field(default="", max_length=255)
    error: str = Field(default="", max_length=1000)
    created_at: datetime
    sent_at: datetime | None = None


class Event(TenantOwnedUnindexed, SQLModel, table=True):
    """Something that happened: sent, delivered, bounced, unsubscribed, approved, ..."""

    __table_args__ = (Index("ix_event_kind_partner", "tenant_id", "kind", "partner_id"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=40)
    occurred_at: datetime
    partner_id: int | None = Field(default=None, foreign_key="partner.id")
    campaign_id: int | None = Field(default=None, foreign_key="campaign.id")
    enrollment_id: int | None = Field(default=None, foreign_key="enrollment.id")
    dispatch_id: int | None = Field(default=None, foreign_key="dispatch.id")
    contact_id: int | None = Field(default=None, foreign_key="contact.id")
    value: float | None = None
    source: str = Field(default="engine", max_length=64)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
