"""Which of a tenant's partners a principal covers: a :class:`PartnerScope` resolved
against the database.

A partner user's scope names their partner; a concierge's names their concierge, whose
partners are those assigned to them (:class:`~partnercast.concierge.models.PartnerAssignment`);
agency admins, vendor marketers and a concierge membership without a named concierge see
every partner of the tenant.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from partnercast.concierge.models import PartnerAssignment
from partnercast.tenants.access import PartnerScope


def covered_partner_ids(session: Session, scope: PartnerScope) -> frozenset[int] | None:
    """The partner ids ``scope`` covers in the session's tenant, or None for every partner.

    ``session`` must be the tenant's scoped session (core.tenancy.tenant_session): the
    assignments read are that tenant's only. An empty set means no partner at all."""
    if scope.everything:
        return None
    ids = set(scope.partner_ids)
    if scope.concierge_ids:
        assigned = session.exec(
            select(PartnerAssignment.partner_id).where(
                col(PartnerAssignment.concierge_id).in_(sorted(scope.concierge_ids))
            )
        ).all()
        ids.update(assigned)
    return frozenset(ids)


def covers(session: Session, scope: PartnerScope, partner_id: int) -> bool:
    """True when ``scope`` covers ``partner_id`` in the session's tenant."""
    covered = covered_partner_ids(session, scope)
    return covered is None or partner_id in covered


resolve = covered_partner_ids

__all__ = ["covered_partner_ids", "covers", "resolve"]
