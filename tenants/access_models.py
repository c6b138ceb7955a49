"""Table models of who may act: people (users), what they may do where (memberships),
the API tokens that act for them, and the sign-in links and web sessions of the portal.

One role model serves both ways in (the portal and dashboard, and the REST API): a
membership and an API token both carry a :class:`~partnercast.tenants.access.Role`, a
tenant (none for an agency admin's membership: every tenant of the agency) and, for a
partner user, the partner. :mod:`partnercast.tenants.access` turns them into a
``Principal`` that answers "may this one do that, here?".

A user is a person, not a tenant's row: one email may be a partner user with several
vendors of the same agency and switch between them after one sign-in. Those tables are
therefore not tenant-owned; every read of them goes through the functions of
:mod:`partnercast.tenants.users`, which check the tenant themselves.

Secrets are never stored: a token, a sign-in link and a session cookie are kept only as
their SHA-256 (each is 256 random bits, so a fast hash is enough: there is nothing to
guess), found by a short public id.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from partnercast.core.tenancy import TenantOwned

# Memberships and tokens name the tables tenant and partner: their models are imported so
# the keys resolve wherever only these tables are used.
from partnercast.tenants import models as _tenant_models  # noqa: F401


class User(SQLModel, table=True):
    """A person who signs in: agency staff, a vendor's marketer or a partner's user.

    The table is ``person``: ``user`` is a reserved word in PostgreSQL's SQL."""

    __tablename__ = "person"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True, index=True)  # stored lower-case
    name: str = Field(default="", max_length=200)
    locale: str = Field(default="en", max_length=16)
    disabled: bool = Field(default=False)
    created_at: datetime
    last_sign_in_at: datetime | None = None


class Membership(SQLModel, table=True):
    """What one user may do in one tenant (or, as agency admin, in every tenant).

    ``tenant_id`` is None only for an agency admin; ``partner_id`` is set only for a
    partner user; ``concierge_id`` links a concierge user to the concierge whose partners
    they cover (concierge.models.PartnerAssignment).
    """

    __table_args__ = (
        UniqueConstraint("user_id", "role", "tenant_id", "partner_id", name="uq_membership"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="person.id", index=True)
    role: str = Field(max_length=20)
    tenant_id: int | None = Field(default=None, foreign_key="tenant.id", index=True)
    partner_id: int | None = Field(default=None, foreign_key="partner.id", index=True)
    concierge_id: int | None = None  # concierge.id (no key: concierge sits above tenants)
    invited_by: str = Field(default="", max_length=254)
    created_at: datetime
    accepted_at: datetime | None = None  # first sign-in after the invitation


class ApiToken(TenantOwned, SQLModel, table=True):
    """A REST API token of one tenant, acting in one role (and for one partner, or as one
    concierge). Shown once when made; only its hash is kept."""

    __table_args__ = (UniqueConstraint("public_id", name="uq_apitoken_public_id"),)

    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(max_length=16)  # the token's readable prefix, used to find it
    token_hash: str = Field(max_length=64)
    name: str = Field(max_length=100)
    role: str = Field(max_length=20)
    partner_id: int | None = Field(default=None, foreign_key="partner.id")
    concierge_id: int | None = None  # concierge.id (no key: concierge sits above tenants)
    created_by: str = Field(default="", max_length=254)
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None


class SignInLink(SQLModel, table=True):
    """A magic sign-in link sent by email: works once, expires (the link itself is signed
    and carries only the public id; the secret half is checked against the hash)."""

    __table_args__ = (
        UniqueConstraint("public_id", name="uq_signinlink_public_id"),
        Index("ix_signinlink_email_created", "email", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(max_length=16)
    secret_hash: str = Field(max_length=64)
    user_id: int = Field(foreign_key="person.id", index=True)
    email: str = Field(max_length=254)
    purpose: str = Field(default="sign-in", max_length=20)  # sign-in | invitation
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    requested_from: str = Field(default="", max_length=64)  # the asking client's address


class WebSession(SQLModel, table=True):
    """A signed-in browser: the cookie holds ``public_id.secret``; sign-out revokes it."""

    __table_args__ = (UniqueConstraint("public_id", name="uq_websession_public_id"),)

    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(max_length=16)
    secret_hash: str = Field(max_length=64)
    user_id: int = Field(foreign_key="person.id", index=True)
    tenant_id: int | None = Field(default=None, foreign_key="tenant.id")  # the one in view
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    ip: str = Field(default="", max_length=64)
    user_agent: str = Field(default="", max_length=400)
