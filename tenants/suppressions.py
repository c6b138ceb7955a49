"""Suppressions: addresses that must never get another message from a tenant.

An unsubscribe, a hard bounce or a complaint adds the address; every send checks the list
at the moment of sending. Unsubscribe links carry a signed token naming the tenant and the
contact, so the one-click endpoint needs no login and cannot be used to unsubscribe anyone
else.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from partnercast.core.models import Event
from partnercast.core.settings import Settings
from partnercast.core.signing import InvalidToken, read_recipient_token, recipient_token, unsign
from partnercast.core.tenancy import tenant_session
from partnercast.tenants.models import Contact, Suppression

UNSUBSCRIBE = "unsubscribe"
UNSUBSCRIBE_LINK_DAYS = 400  # well past the 30 days the law asks links to keep working


def normalise_email(email: str) -> str:
    return email.strip().lower()


def suppress(session: Session, email: str, *, reason: str, source: str = "", now: datetime) -> bool:
    """Add ``email`` to the tenant's suppression list at ``now``; False when it was
    already there."""
    address = normalise_email(email)
    existing = session.exec(select(Suppression).where(Suppression.email == address)).first()
    if existing is not None:
        return False
    session.add(Suppression(email=address, reason=reason, source=source[:200], created_at=now))
    session.flush()
    return True


def suppressed_among(session: Session, emails: Iterable[str]) -> set[str]:
    """Which of ``emails`` (normalised) are suppressed in the session's tenant."""
    addresses = {normalise_email(email) for email in emails}
    if not addresses:
        return set()
    rows = session.exec(select(Suppression.email).where(col(Suppression.email).in_(addresses)))
    return set(rows.all())


def unsubscribe_token(
    settings: Settings, *, tenant_id: int, contact_id: int, dispatch_id: int, now: datetime
) -> str:
    """The token of a message's unsubscribe link: its recipient token (core/signing.py),
    the one signature a message carries for its tracked links, pixel and unsubscribe."""
    return recipient_token(
        settings, tenant_id=tenant_id, dispatch_id=dispatch_id, contact_id=contact_id, now=now
    )


def _unsubscribe_ids(settings: Settings, token: str, now: datetime) -> tuple[int, int, int]:
    """(tenant, contact, dispatch) of an unsubscribe link's token followed at ``now``, or
    InvalidToken.

    Messages sent before the recipient token carried a token of their own (a signed JSON
    list for this purpose); those links keep working for as long as they were promised.
    """
    max_age = UNSUBSCRIBE_LINK_DAYS * 86400
    try:
        ids = read_recipient_token(settings, token, max_age_seconds=max_age, now=now)
    except InvalidToken as error:
        if "expired" in str(error):
            raise
        tenant_id, contact_id, dispatch_id = unsign(
            settings, UNSUBSCRIBE, token, max_age_seconds=max_age, now=now
        )
        return int(tenant_id), int(contact_id), int(dispatch_id)
    return ids.tenant_id, ids.contact_id, ids.dispatch_id


def unsubscribe_url(settings: Settings, token: str) -> str:
    return f"{settings.public_base_url.rstrip('/')}/u/{token}"


@dataclass(frozen=True)
class UnsubscribeResult:
    email: str
    newly_suppressed: bool


def unsubscribe_by_token(
    engine: Engine, settings: Settings, token: str, *, now: datetime
) -> UnsubscribeResult:
    """Honour an unsubscribe link followed at ``now``: suppress the contact's address in
    its tenant."""
    tenant_id, contact_id, dispatch_id = _unsubscribe_ids(settings, token, now)
    with tenant_session(engine, tenant_id) as session:
        contact = session.get(Contact, int(contact_id))
        if contact is None:
            raise InvalidToken("this link is not valid")
        added = suppress(
            session, contact.email, reason="unsubscribed", source=f"link:{dispatch_id}", now=now
        )
        if added:
            session.add(
                Event(
                    kind="unsubscribed",
                    occurred_at=now,
                    partner_id=contact.partner_id,
                    contact_id=contact.id,
                    dispatch_id=int(dispatch_id),
                    source="link",
                )
            )
        return UnsubscribeResult(contact.email, added)
