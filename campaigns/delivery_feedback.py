"""Recording bounce and complaint reports against the deliveries they are about.

The email channel parses the reports (channels/email/feedback_reports.py) and hands them
over through the plugin host (``Host.record_delivery_feedback``); this module records them.

A report names the Message-ID of our message; ``core/outbox.py`` ``message_id_for`` made it
from the tenant, dispatch and contact (``<pc.DISPATCH.CONTACT.DIGEST@domain>``). The
intake reads the dispatch and contact from it, checks the digest against THIS tenant, and
looks the ledger row up by its unique (dispatch, contact) pair in a tenant-scoped session,
then compares the stored Message-ID. A report about another tenant's message, or one we
never sent, matches nothing and is rejected with one line; nothing is written.

What each kind does, in one transaction:

* **bounce-hard**: the ledger row becomes ``bounced`` and the address is suppressed
  (reason ``hard_bounce``), exactly as a synchronous 5xx refusal would have left it: the
  dispatch's tallies are recounted from its ledger (``sent_count`` one less, so the
  rollups' *delivered* drops by one; ``failed_count`` one more, which is what the concierge
  scan's bounce-rate rule starts from), and a ``bounced`` Event (partner, campaign,
  enrollment, dispatch, contact; cycle and touch in ``data``) adds one to *bounced* (and
  gives back the *sent* the recount took).
* **bounce-soft** and **delayed**: a ``bounce.soft`` or ``delivery.delayed`` Event, no
  suppression. An address that soft-bounced in 7 different dispatches (15 when it ever
  opened or clicked) is then suppressed as a hard bounce: Mailchimp's published rule.
* **complaint**: a ``complained`` Event (counted in the rollups and by the bounce-rate
  rule) and the address suppressed (reason ``complaint``).

Idempotent: a row already ``bounced`` takes no second hard bounce, a delivery has at most
one complaint, and a soft bounce or delay is recorded once per report (its Message-ID or
a digest of its bytes). The dispatch row, then the ledger row, are locked first (the order
the send path uses), so two imports of the same report at once record it once.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from partnercast.campaigns.models import Enrollment
from partnercast.core import outbox
from partnercast.core.models import Delivery, Dispatch, Event
from partnercast.core.tenancy import session_tenant, tenant_session
from partnercast.plugins.host import (
    RECORDED,
    REJECTED,
    UNCHANGED,
    DeliveryReport,
    FeedbackOutcome,
)
from partnercast.tenants.models import Contact
from partnercast.tenants.suppressions import normalise_email, suppress

BOUNCE_HARD, BOUNCE_SOFT, DELAYED, COMPLAINT = "bounce-hard", "bounce-soft", "delayed", "complaint"
EVENT_KIND = {
    BOUNCE_HARD: "bounced",
    BOUNCE_SOFT: "bounce.soft",
    DELAYED: "delivery.delayed",
    COMPLAINT: "complained",
}
SOFT_BOUNCE_LIMIT = 7  # distinct dispatches, for an address that never opened or clicked
SOFT_BOUNCE_LIMIT_ENGAGED = 15
WAS_SENT = (outbox.SENT, outbox.UNCERTAIN)  # final rows whose message may have gone out
_PARTS = re.compile(r"^<pc\.(\d+)\.(\d+)\.([0-9a-f]{16})@([^<>\s]+)>$", re.IGNORECASE)

EVENT_SOURCE = "mail-feedback:"
"""Prefix of the events this intake records (the concierge scan finds late bounces by it)."""


class Rejected(Exception):
    """The report matches no delivery of this tenant (or, ``retry``, cannot be recorded yet)."""

    def __init__(self, reason: str, *, retry: bool = False) -> None:
        super().__init__(reason)
        self.retry = retry


def record_reports(
    engine: Engine, tenant_id: int, reports: Sequence[DeliveryReport], *, now: datetime
) -> FeedbackOutcome:
    """Record one parsed report in ``tenant_id`` (its own transaction)."""
    try:
        with tenant_session(engine, tenant_id) as session:
            return record_report(session, reports, now=now)
    except Rejected as reason:  # raised inside the session: it rolled back
        return FeedbackOutcome(REJECTED, str(reason), retry=reason.retry)


def record_report(
    session: Session, reports: Sequence[DeliveryReport], *, now: datetime
) -> FeedbackOutcome:
    """Record one report (its recipients' outcomes, most severe first) in the session's
    tenant; raises :class:`Rejected` when it matches no delivery of this tenant."""
    tenant_id = session_tenant(session)
    message_id = reports[0].message_id
    dispatch_id, contact_id = _our_ids(tenant_id, message_id)
    dispatch = session.exec(
        select(Dispatch).where(Dispatch.id == dispatch_id).with_for_update()
    ).first()
    delivery = session.exec(
        select(Delivery)
        .where(Delivery.dispatch_id == dispatch_id, Delivery.contact_id == contact_id)
        .with_for_update()
    ).first()
    if dispatch is None or delivery is None or delivery.message_id.lower() != message_id.lower():
        raise Rejected(f"no delivery with Message-ID {message_id} in this tenant")
    report = _pick(reports, delivery.email)
    if delivery.state in (outbox.PENDING, outbox.SENDING):
        raise Rejected(
            f"delivery {delivery.id} ({message_id}) is still being sent; import it again later",
            retry=True,
        )
    changed = _apply(session, report, dispatch, delivery, now)
    kind = str(report.kind)
    where = f"delivery {delivery.id} ({delivery.email}, dispatch {dispatch.id})"
    if not changed:
        already = f"{kind} for {where} already recorded (delivery {delivery.state})"
        return FeedbackOutcome(UNCHANGED, already, kind, delivery.id)
    return FeedbackOutcome(RECORDED, f"{kind} for {where}: {report.summary}", kind, delivery.id)


def _our_ids(tenant_id: int, message_id: str) -> tuple[int, int]:
    """(dispatch, contact) named by one of this tenant's Message-IDs, or Rejected.

    The digest is checked before any query: a Message-ID made for another tenant (or
    made up) is rejected the same way as one that matches no ledger row.
    """
    found = _PARTS.match(message_id.strip())
    if not found:
        raise Rejected(f"Message-ID {message_id or '(none)'} is not one this engine sends")
    dispatch_id, contact_id, digest = int(found[1]), int(found[2]), found[3].lower()
    expected = hashlib.sha256(f"{tenant_id}:{dispatch_id}:{contact_id}".encode()).hexdigest()
    if expected[:16] != digest:
        raise Rejected(f"no delivery with Message-ID {message_id} in this tenant")
    return dispatch_id, contact_id


def _pick(reports: Sequence[DeliveryReport], email: str) -> DeliveryReport:
    """The recipient block about this delivery's address, else the most severe one."""
    address = normalise_email(email)
    for report in reports:
        if report.recipient == address:
            return report
    return reports[0]


def _apply(
    session: Session,
    report: DeliveryReport,
    dispatch: Dispatch,
    delivery: Delivery,
    now: datetime,
) -> bool:
    kind = EVENT_KIND[report.kind]
    if report.kind == BOUNCE_HARD:
        if delivery.state not in WAS_SENT:  # bounced already (at send time or imported)
            return False
        delivery.state, delivery.error = outbox.BOUNCED, report.summary[:1000]
        session.flush()
        outbox.recount(session, dispatch)
        suppress(session, delivery.email, reason="hard_bounce", source=_source(report), now=now)
    elif report.kind == COMPLAINT:
        if _events(session, dispatch.partner_id, delivery, kind):
            return False
        suppress(session, delivery.email, reason="complaint", source=_source(report), now=now)
    else:
        if any(
            e.data.get("report") == report.report_id
            for e in _events(session, dispatch.partner_id, delivery, kind)
        ):
            return False
    session.add(_event(session, kind, report, dispatch, delivery, now))
    session.flush()
    if report.kind == BOUNCE_SOFT:
        _soft_bounce_limit(session, delivery.email, now)
    return True


def _events(session: Session, partner_id: int, delivery: Delivery, kind: str) -> list[Event]:
    return list(
        session.exec(
            select(Event).where(
                Event.kind == kind,
                Event.partner_id == partner_id,  # (tenant, kind, partner) is indexed
                Event.dispatch_id == delivery.dispatch_id,
                Event.contact_id == delivery.contact_id,
            )
        ).all()
    )


def _event(
    session: Session,
    kind: str,
    report: DeliveryReport,
    dispatch: Dispatch,
    delivery: Delivery,
    now: datetime,
) -> Event:
    enrollment = session.get(Enrollment, dispatch.enrollment_id)
    return Event(
        kind=kind,
        occurred_at=now,
        partner_id=dispatch.partner_id,
        campaign_id=enrollment.campaign_id if enrollment else None,
        enrollment_id=dispatch.enrollment_id,
        dispatch_id=dispatch.id,
        contact_id=delivery.contact_id,
        source=f"{EVENT_SOURCE}{report.source}",
        data={
            "cycle_id": dispatch.cycle_id,
            "touch_id": dispatch.touch_id,
            "delivery_id": delivery.id,
            "recipient": report.recipient,
            "status": report.status,
            "detail": report.diagnostic[:500],
            "report": report.report_id,
            "after_send": True,
        },
    )


def _source(report: DeliveryReport) -> str:
    return f"{report.source}:{report.status or report.kind}:{report.report_id}"[:200]


def _soft_bounce_limit(session: Session, email: str, now: datetime) -> None:
    """Suppress an address that soft-bounced in too many dispatches (Mailchimp's rule)."""
    found = session.exec(select(Contact.id, Contact.partner_id).where(Contact.email == email))
    contacts = found.all()
    ids, partners = [c for c, _ in contacts], sorted({p for _, p in contacts})
    mine = (col(Event.partner_id).in_(partners), col(Event.contact_id).in_(ids))
    bounced_in = session.exec(
        select(func.count(func.distinct(Event.dispatch_id))).where(
            Event.kind == EVENT_KIND[BOUNCE_SOFT], *mine
        )
    ).one()
    if bounced_in < SOFT_BOUNCE_LIMIT:
        return
    engaged = session.exec(
        select(Event.id).where(col(Event.kind).in_(("opened", "clicked")), *mine).limit(1)
    ).first()
    limit = SOFT_BOUNCE_LIMIT_ENGAGED if engaged is not None else SOFT_BOUNCE_LIMIT
    if bounced_in >= limit:
        suppress(session, email, reason="hard_bounce", source=f"{bounced_in} soft bounces", now=now)
