"""Table models of the tenant side: who the vendor is, its partners and their contacts.

Time columns have no default: the caller passes its ``now`` (see core/models.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from partnercast.core.tenancy import TenantOwned, TenantOwnedUnindexed


class Tenant(SQLModel, table=True):
    """A vendor: the isolation boundary. Its brand is the bottom layer of every render."""

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(unique=True, index=True, max_length=64)
    name: str = Field(max_length=200)
    default_locale: str = Field(default="en", max_length=16)
    # What happens to an email that was on the wire when its worker died (core.journal):
    # at_least_once resends it with the same Message-ID; at_most_once never resends it and
    # tells the concierge.
    delivery_guarantee: str = Field(
        default="at_least_once", max_length=20, sa_column_kwargs={"server_default": "at_least_once"}
    )
    brand: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # What an unsubscribe (or a withdrawal of consent in an import) stops: mail from every
    # partner of the vendor ("vendor"), or from the partner whose mail it came from only.
    unsubscribe_scope: str = Field(
        default="vendor", max_length=20, sa_column_kwargs={"server_default": "vendor"}
    )
    # The import column choices given with --map, remembered: {"contacts": {key: field}}.
    import_columns: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=Column(JSON, nullable=False, server_default=text("'{}'")),
    )
    created_at: datetime


class Partner(TenantOwned, SQLModel, table=True):
    """A channel partner (reseller, integrator) of one tenant."""

    __table_args__ = (UniqueConstraint("tenant_id", "external_id"),)

    id: int | None = Field(default=None, primary_key=True)
    external_id: str = Field(max_length=100)
    name: str = Field(max_length=200)
    tier: str = Field(default="registered", max_length=40)
    region: str = Field(default="", max_length=40)
    languages: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    score: float = Field(default=0.0)
    time_zone: str = Field(default="UTC", max_length=64)
    status: str = Field(default="active", max_length=20)
    # Brand: what the partner's messages are signed with.
    legal_name: str = Field(default="", max_length=200)
    postal_address: str = Field(default="", max_length=400)
    logo_url: str = Field(default="", max_length=500)
    primary_color: str = Field(default="", max_length=16)
    secondary_color: str = Field(default="", max_length=16)
    signature: str = Field(default="", max_length=1000)
    sender_name: str = Field(default="", max_length=200)
    sender_email: str = Field(default="", max_length=254)
    # The single point of contact for the weekly review.
    contact_name: str = Field(default="", max_length=200)
    contact_email: str = Field(default="", max_length=254)
    created_at: datetime
    updated_at: datetime


class Contact(TenantOwnedUnindexed, SQLModel, table=True):
    """A partner's customer: someone the partner may email (with consent)."""

    __table_args__ = (
        UniqueConstraint("tenant_id", "partner_id", "external_id"),
        # What the delivery ledger's composite foreign key refers to (revision 0025).
        Index("uq_contact_tenant_id", "tenant_id", "id", unique=True),
        # A partner's audience in keyset pages (partner, id > last, ORDER BY id): without
        # it, and without statistics, PostgreSQL read the pages off the index above,
        # every contact of the tenant in id order, to keep the partner's (revision 0025).
        Index("ix_contact_partner", "tenant_id", "partner_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    partner_id: int = Field(foreign_key="partner.id")
    external_id: str = Field(max_length=100)
    email: str = Field(max_length=254, index=True)
    first_name: str = Field(default="", max_length=100)
    last_name: str = Field(default="", max_length=100)
    company: str = Field(default="", max_length=200)
    locale: str = Field(default="en", max_length=16)
    consent: bool = Field(default=False)
    created_at: datetime
    updated_at: datetime


class Suppression(TenantOwned, SQLModel, table=True):
    """An address that must never get another message from this tenant."""

    __table_args__ = (UniqueConstraint("tenant_id", "email"),)

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254)
    reason: str = Field(max_length=40)  # unsubscribed | hard_bounce | complaint | manual
    source: str = Field(default="", max_length=200)
    created_at: datetime


class PartnerSuppression(TenantOwned, SQLModel, table=True):
    """An address that must get no more messages from one partner (a tenant whose
    unsubscribes stop one partner's mail only: ``Tenant.unsubscribe_scope``)."""

    __table_args__ = (UniqueConstraint("tenant_id", "partner_id", "email"),)

    id: int | None = Field(default=None, primary_key=True)
    partner_id: int = Field(foreign_key="partner.id", index=True)
    email: str = Field(max_length=254)
    reason: str = Field(max_length=40)  # unsubscribed | withdrawn | manual
    source: str = Field(default="", max_length=200)
    created_at: datetime


class Erasure(TenantOwned, SQLModel, table=True):
    """An address erased on request: only its one-way hash (``suppressions.email_hash``)
    is kept, so that no later import or send reaches it again."""

    __table_args__ = (UniqueConstraint("tenant_id", "email_hash"),)

    id: int | None = Field(default=None, primary_key=True)
    email_hash: str = Field(max_length=64)
    erased_at: datetime


class ConsentRecord(TenantOwned, SQLModel, table=True):
    """Evidence of a consent given or withdrawn: when, how, the text agreed to, from
    which source. Kept after an erasure with the address removed (its hash stays)."""

    id: int | None = Field(default=None, primary_key=True)
    contact_id: int | None = Field(default=None, foreign_key="contact.id", index=True)
    partner_id: int | None = Field(default=None, foreign_key="partner.id")
    email: str = Field(default="", max_length=254)
    email_hash: str = Field(max_length=64, index=True)
    granted: bool
    occurred_at: datetime  # when the person gave or withdrew it (as the source says)
    method: str = Field(max_length=40)  # import | unsubscribe link | command | bounce ...
    text: str = Field(default="", max_length=2000)  # the wording agreed to, if known
    source: str = Field(default="", max_length=300)  # file and line, link, command
    recorded_at: datetime


class Segment(TenantOwned, SQLModel, table=True):
    """A named, declarative rule over partner fields (see tenants.segments)."""

    __table_args__ = (UniqueConstraint("tenant_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64)
    name: str = Field(default="", max_length=200)
    rule: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime
