"""Looking up a tenant's partners and their contacts (always through a scoped session)."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, col, select

from partnercast.core.errors import NotFound
from partnercast.core.tenancy import session_tenant
from partnercast.tenants.models import Contact, Partner


def find_partner(session: Session, external_id: str) -> Partner | None:
    """The tenant's partner ``external_id``, matched exactly, else without regard to case
    when that names one partner only (``p1001`` is ``P1001``); None when there is none."""
    session_tenant(session)
    partner = session.exec(select(Partner).where(Partner.external_id == external_id)).first()
    if partner is not None:
        return partner
    folded = session.exec(
        select(Partner).where(func.lower(Partner.external_id) == external_id.strip().lower())
    ).all()
    return folded[0] if len(folded) == 1 else None


def get_partner(session: Session, external_id: str, *, where: str | None = None) -> Partner:
    """The tenant's partner ``external_id`` (:func:`find_partner`); another tenant's
    partner is simply not found. Not found, the error suggests the nearest of the tenant's
    partner ids when one is close."""
    partner = find_partner(session, external_id)
    if partner is None:
        raise NotFound(
            f"no partner {external_id!r}{_suggestion(session, external_id)}", where=where
        )
    return partner


def _suggestion(session: Session, external_id: str) -> str:
    from rapidfuzz import fuzz, process, utils

    ids = list(session.exec(select(Partner.external_id)).all())
    best = process.extractOne(
        external_id, ids, scorer=fuzz.ratio, processor=utils.default_process, score_cutoff=70
    )
    return f" (did you mean {best[0]!r}?)" if best else ""


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
