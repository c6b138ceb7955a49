"""The dashboard's pages that more than one route renders: the approvals queue (shown
again with an error beside the row a refused action was about)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from fastapi import Request, Response
from sqlmodel import Session, col, select

from partnercast.campaigns.approval import fingerprint
from partnercast.campaigns.models import Enrollment
from partnercast.campaigns.store import list_campaigns
from partnercast.concierge import review
from partnercast.concierge.approval_queue import agency_queue, approval_queue
from partnercast.tenants.models import Partner
from partnercast.web.dashboard_access import Desk, render
from partnercast.web.invitations import partner_users


def partner_names(session: Session, ids: Collection[int]) -> dict[int, Partner]:
    if not ids:
        return {}
    rows = session.exec(select(Partner).where(col(Partner.id).in_(list(ids)))).all()
    return {row.id or 0: row for row in rows}


SHOWN = 200
"""The most rows a list shows (the longest waiting, the earliest due): a filter narrows it."""


def approvals_page(
    request: Request,
    desk: Desk,
    now: datetime,
    *,
    campaign: str = "",
    status: int = 200,
    message: str = "",
    error: str = "",
    error_for: int | None = None,
) -> Response:
    with desk.session() as session:
        everything = approval_queue(session, desk.covered, now=now, campaign=campaign)
        waiting = everything[:SHOWN]
        # Waiting for us: the partner asked for changes, the concierge's own work.
        all_ours = agency_queue(session, desk.covered, now=now, campaign=campaign)
        ours = all_ours[:SHOWN]
        shown = [w.enrollment_id for w in waiting + ours]
        fingerprints = {
            enrollment.id: fingerprint(enrollment)
            for enrollment in session.exec(
                select(Enrollment).where(col(Enrollment.id).in_(shown))
            ).all()
        }
        campaigns = [(c.key, c.name) for c in list_campaigns(session)]
    return render(
        request,
        desk,
        "approvals.html",
        status=status,
        section="approvals",
        waiting=waiting,
        total=len(everything),
        ours=ours,
        ours_total=len(all_ours),
        fingerprints=fingerprints,
        campaigns=campaigns,
        campaign=campaign,
        message=message,
        error=error,
        error_for=error_for,
    )


def partner_view(
    request: Request,
    desk: Desk,
    now: datetime,
    partner_id: int,
    *,
    held: int = 0,
    invited: int = 0,
    error: str = "",
    status: int = 200,
) -> Response:
    with desk.session() as session:
        partner = desk.partner(session, partner_id)
        agenda = review.build_agenda(session, partner, now)
        reviews = review.list_reviews(session, partner)[:10]
    people = partner_users(desk.engine, desk.tenant_id, partner_id)
    return render(
        request,
        desk,
        "partner.html",
        section="partners",
        partner=partner,
        agenda=agenda,
        reviews=reviews,
        people=people,
        message="held" if held else ("invited" if invited else ""),
        error=error,
        status=status,
    )
