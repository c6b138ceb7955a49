"""The demo's people who sign in to the portal and the dashboard: an agency admin, the three
concierges (each linked to their Concierge row, so they see the partners they cover), a
vendor marketer, and a partner user for each partner's point of contact, in the partner's
language. At the end the demo prints a sign-in link for one partner and one concierge,
for the engine's default address (``partnercast serve``), valid for a week.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from partnercast.concierge.models import Concierge
from partnercast.core.settings import Settings
from partnercast.core.tenancy import plain_session, tenant_session
from partnercast.tenants.access import Role
from partnercast.tenants.access_models import User
from partnercast.tenants.models import Partner
from partnercast.tenants.users import ensure_user, grant
from partnercast.web import magic_links

AGENCY_ADMIN = ("Sam Admin", "sam.admin@agency.example")
VENDOR_MARKETER = ("Nora Market", "nora.market@northwind.example")
SERVE_ADDRESS = str(Settings.model_fields["public_base_url"].default)
"""Where `partnercast serve` answers by default: the printed links point there."""
INVITED_BY = "partnercast demo"


@dataclass(frozen=True)
class People:
    concierges: int
    partner_users: int


def set_up(engine: Engine, tenant_id: int, now: datetime) -> People:
    """Make the users and their memberships (idempotent)."""
    with tenant_session(engine, tenant_id) as session:
        concierges = [
            (c.id, c.name, c.email)
            for c in session.exec(select(Concierge).order_by(col(Concierge.id))).all()
        ]
        contacts = [
            (p.id, p.contact_name, p.contact_email, (p.languages or ["en"])[0])
            for p in session.exec(select(Partner).order_by(col(Partner.id))).all()
            if p.contact_email
        ]
    with plain_session(engine) as session:
        admin = ensure_user(session, AGENCY_ADMIN[1], now=now, name=AGENCY_ADMIN[0])
        grant(session, admin, Role.AGENCY_ADMIN, tenant_id=None, now=now, invited_by=INVITED_BY)
        marketer = ensure_user(session, VENDOR_MARKETER[1], now=now, name=VENDOR_MARKETER[0])
        grant(
            session,
            marketer,
            Role.VENDOR_MARKETER,
            tenant_id=tenant_id,
            now=now,
            invited_by=INVITED_BY,
        )
        for concierge_id, name, email in concierges:
            user = ensure_user(session, email, now=now, name=name)
            grant(
                session,
                user,
                Role.CONCIERGE,
                tenant_id=tenant_id,
                concierge_id=concierge_id,
                now=now,
                invited_by=INVITED_BY,
            )
        for partner_id, name, email, language in contacts:
            user = ensure_user(session, email, now=now, name=name, locale=language)
            grant(
                session,
                user,
                Role.PARTNER,
                tenant_id=tenant_id,
                partner_id=partner_id,
                now=now,
                invited_by=INVITED_BY,
            )
    return People(len(concierges), len(contacts))


@dataclass(frozen=True)
class Link:
    who: str
    email: str
    url: str


def sign_in_links(
    engine: Engine, settings: Settings, tenant_id: int, now: datetime, *, partner: str = "P001"
) -> list[Link]:
    """A sign-in link (one use, 7 days from ``now``) for ``partner``'s user and for the
    first concierge, at :data:`SERVE_ADDRESS`."""
    served = settings.model_copy(update={"public_base_url": SERVE_ADDRESS})
    with tenant_session(engine, tenant_id) as session:
        found = session.exec(select(Partner).where(Partner.external_id == partner)).first()
        concierge = session.exec(select(Concierge).order_by(col(Concierge.id))).first()
        wanted = []
        if found is not None and found.contact_email:
            wanted.append((f"partner {partner} ({found.name})", found.contact_email))
        if concierge is not None and concierge.email:
            wanted.append((f"concierge {concierge.name}", concierge.email))
    links = []
    with plain_session(engine) as session:
        for who, email in wanted:
            user = session.exec(select(User).where(User.email == email.lower())).first()
            if user is None:
                continue
            issued = magic_links.issue(
                session, served, user, now=now, purpose=magic_links.INVITATION
            )
            links.append(Link(who, user.email, issued.url))
    return links


__all__ = ["People", "set_up", "sign_in_links"]
