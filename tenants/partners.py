"""Looking up a tenant's partners and their contacts (always through a scoped session)."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, col, select

from partnercast.core.errors import NotFound
from partnercast.core.tenancy import session_tenant
from partnercast.tenants.models import Contact, Partner


def get_partner(session: Session, external_id: str) -> Partner:
    """The tenant's partner ``external_id``; another tenant's partner is simply not found."""
    session_tenant(session)
    partner = session.exec(select(Partner).where(Partner.external_id == external_id)).first()
    if partner is None:
        raise NotFound(f"no partner {external_id!r}")
    return partner


def list_partners(session: Session) -> list[Partner]:
    """The tenant's partners, by external id."""
    session_tenant(session)
    return list(session.exec(select(Partner).order_by(Partner.external_id)).all())


def count_contacts(session: Session, partner: Partner) -> int:
    """How many contacts ``partner`` has."""
    query = select(func.count(col(Contact.id))).where(Contact.partner_id == partner.id)
    return int(session.exec(query).one())


def list_contacts(session: Session, partner: Partner, *, limit: int | None = None) -> list[Contact]:
    """``partner``'s contacts by external id, the first ``limit`` of them."""
    query = select(Contact).where(Contact.partner_id == partner.id).order_by(Contact.external_id)
    if limit is not None:
        query = query.limit(limit)
    return list(session.exec(query).all())
