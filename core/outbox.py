"""The dispatch outbox and the per-contact delivery ledger.

Dispatches are planned ahead with an idempotency key; deliveries are written (state
``pending``) and committed BEFORE their message is handed to a channel, and marked after.
So a tick that runs twice, or after a crash, finds every contact already in the ledger
and sends nothing twice; a delivery left ``pending`` by a crash is retried with the same
Message-ID, so that a receiver can drop the duplicate.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from partnercast.core.models import Delivery, Dispatch, Event
from partnercast.core.tenancy import session_tenant

PENDING = "pending"
RUNNING = "running"
DONE = "done"
FAILED = "failed"
SKIPPED = "skipped"

SENT = "sent"
SUPPRESSED = "suppressed"
BOUNCED = "bounced"


def idempotency_key(tenant_id: int, enrollment_id: int, touch_id: int, cycle_id: int) -> str:
    return f"t{tenant_id}:e{enrollment_id}:touch{touch_id}:c{cycle_id}"


def message_id(delivery: Delivery, domain: str) -> str:
    """A Message-ID that is the same every time this delivery is (re)sent."""
    digest = hashlib.sha256(f"{delivery.tenant_id}:{delivery.id}".encode()).hexdigest()[:16]
    return f"<pc.{delivery.id}.{digest}@{domain}>"


def due_dispatches(session: Session, now: datetime, *, limit: int = 100) -> list[Dispatch]:
    """Pending dispatches whose time has come, oldest first."""
    statement = (
        select(Dispatch)
        .where(Dispatch.state == PENDING, Dispatch.scheduled_at <= now)
        .order_by(col(Dispatch.scheduled_at), col(Dispatch.id))
        .limit(limit)
    )
    return list(session.exec(statement).all())


@dataclass(frozen=True)
class Addressee:
    contact_id: int
    email: str


def open_deliveries(
    session: Session, dispatch: Dispatch, addressees: Sequence[Addressee], suppressed: set[str]
) -> list[Delivery]:
    """Write the ledger rows for one batch; return those still to be sent.

    Contacts already in the ledger for this dispatch are not added again: sent ones are
    left alone, pending ones (a crash between write and send) are returned to be retried.
    Suppressed addresses get a final ``suppressed`` row and are never returned.
    """
    ids = [addressee.contact_id for addressee in addressees]
    existing = {
        delivery.contact_id: delivery
        for delivery in session.exec(
            select(Delivery).where(
                Delivery.dispatch_id == dispatch.id, col(Delivery.contact_id).in_(ids)
            )
        ).all()
    }
    to_send: list[Delivery] = []
    for addressee in addressees:
        delivery = existing.get(addressee.contact_id)
        if delivery is None:
            state = SUPPRESSED if addressee.email.lower() in suppressed else PENDING
            delivery = Delivery(
                tenant_id=session_tenant(session),
                dispatch_id=dispatch.id,
                contact_id=addressee.contact_id,
                email=addressee.email,
                state=state,
            )
            session.add(delivery)
            if state == SUPPRESSED:
                dispatch.suppressed_count += 1
        if delivery.state == PENDING and addressee.email.lower() in suppressed:
            delivery.state = SUPPRESSED
            dispatch.suppressed_count += 1
        if delivery.state == PENDING:
            to_send.append(delivery)
    session.flush()
    return to_send


def record_event(session: Session, kind: str, dispatch: Dispatch, **fields: object) -> Event:
    event = Event(kind=kind, partner_id=dispatch.partner_id, dispatch_id=dispatch.id, **fields)
    session.add(event)
    return event
