"""Suppressions: addresses that must never get another message from a tenant, or from one
of its partners; erasures; the consent records that say when and how consent changed.

An unsubscribe, a withdrawal of consent (in an import, or by command), a hard bounce or a
complaint adds the address; every send checks the lists at the moment of sending. A hard
bounce or a complaint stops every partner's mail; an unsubscribe or a withdrawal stops
what the tenant chose (``Tenant.unsubscribe_scope``): every partner of the vendor
("vendor", the default) or the one partner ("partner").

An erasure removes the address from every row of the tenant that holds it and keeps only
a one-way hash of it (:func:`email_hash`, salted with the tenant), so that no later import
brings it back and no send reaches it.

Unsubscribe links carry a signed token naming the tenant and the contact, so the
one-click endpoint needs no login and cannot be used to unsubscribe anyone else.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, delete, func, literal, or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from partnercast.core.errors import UserError
from partnercast.core.models import Delivery, Event
from partnercast.core.settings import Settings
from partnercast.core.signing import InvalidToken, read_recipient_token, recipient_token, unsign
from partnercast.core.sql import among
from partnercast.core.tenancy import session_tenant, tenant_session
from partnercast.core.webhook_outbox import Happening
from partnercast.tenants.models import (
    ConsentRecord,
    Contact,
    Erasure,
    PartnerSuppression,
    Suppression,
    Tenant,
)

UNSUBSCRIBE = "unsubscribe"
UNSUBSCRIBE_LINK_DAYS = 400  # well past the 30 days the law asks links to keep working
SCOPES = ("vendor", "partner")
"""Tenant.unsubscribe_scope: what an unsubscribe or a withdrawal stops."""
ERASED = "erased"


def normalise_email(email: str) -> str:
    return email.strip().lower()


def email_hash(tenant_id: int, email: str) -> str:
    """The one-way hash an erasure keeps of an address: SHA-256 of the tenant and the
    normalised address, so one tenant's hashes say nothing about another's."""
    return email_hasher(tenant_id)(normalise_email(email))


def email_hasher(tenant_id: int) -> Callable[[str], str]:
    """:func:`email_hash` of one tenant, for addresses already normalised
    (:func:`normalise_email`): an import hashes 100,000 of them."""
    salted = hashlib.sha256(f"partnercast-erasure:{tenant_id}:".encode())

    def hashed(address: str) -> str:
        digest = salted.copy()
        digest.update(address.encode())
        return digest.hexdigest()

    return hashed


def unsubscribe_scope(session: Session) -> str:
    """The session's tenant's choice of what an unsubscribe stops (see :data:`SCOPES`)."""
    tenant = session.get(Tenant, session_tenant(session))
    return tenant.unsubscribe_scope if tenant is not None else SCOPES[0]


def withdraw(
    session: Session,
    email: str,
    partner_id: int,
    *,
    reason: str,
    source: str,
    now: datetime,
    scope: str | None = None,
) -> bool:
    """Stop mail to ``email`` as the tenant's unsubscribe scope says (or ``scope``): from
    every partner, or from ``partner_id`` only. False when it was already stopped."""
    if (scope or unsubscribe_scope(session)) == "vendor":
        return suppress(session, email, reason=reason, source=source, now=now)
    address = normalise_email(email)
    existing = session.exec(
        select(PartnerSuppression.id).where(
            PartnerSuppression.partner_id == partner_id, PartnerSuppression.email == address
        )
    ).first()
    if existing is not None:
        return False
    session.add(
        PartnerSuppression(
            partner_id=partner_id,
            email=address,
            reason=reason,
            source=source[:200],
            created_at=now,
        )
    )
    session.flush()
    return True


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


def suppress_by_command(
    session: Session,
    emails: Iterable[str],
    *,
    partner_id: int | None,
    reason: str,
    now: datetime,
) -> int:
    """Suppress ``emails`` for every partner (``partner_id`` None) or one partner, as the
    operator asked, recording each as a withdrawal of consent; how many were new. A string
    that is not an address is a UserError before anything is written."""
    tenant_id = session_tenant(session)
    addresses = [normalise_email(email) for email in emails]
    bad = [email for email in addresses if "@" not in email or " " in email]
    if bad:
        raise UserError(f"not an email address: {', '.join(repr(email) for email in bad)}")
    added = 0
    for address in dict.fromkeys(addresses):
        scope = "vendor" if partner_id is None else "partner"
        if withdraw(
            session,
            address,
            partner_id or 0,
            reason=reason[:40],
            source="command",
            now=now,
            scope=scope,
        ):
            added += 1
            session.add(
                ConsentRecord(
                    partner_id=partner_id,
                    email=address,
                    email_hash=email_hash(tenant_id, address),
                    granted=False,
                    occurred_at=now,
                    method="command",
                    text=reason[:2000],
                    source="contacts suppress",
                    recorded_at=now,
                )
            )
    session.flush()
    return added


def suppressed_among(
    session: Session, emails: Iterable[str], partner_id: int | None = None
) -> set[str]:
    """Which of ``emails`` (normalised) must not be mailed in the session's tenant: on its
    suppression list, erased, or (given ``partner_id``) suppressed for that partner."""
    addresses = {normalise_email(email) for email in emails}
    if not addresses:
        return set()
    # ``among``: one array parameter on PostgreSQL (this runs for every batch of 2,000 sent)
    found = set(
        session.exec(
            select(Suppression.email).where(among(session, col(Suppression.email), addresses))
        )
    )
    if partner_id is not None:
        found |= set(
            session.exec(
                select(PartnerSuppression.email).where(
                    PartnerSuppression.partner_id == partner_id,
                    among(session, col(PartnerSuppression.email), addresses),
                )
            )
        )
    tenant_id = session_tenant(session)
    hashes = {email_hash(tenant_id, address): address for address in addresses - found}
    if hashes:
        erased = session.exec(
            select(Erasure.email_hash).where(among(session, col(Erasure.email_hash), hashes))
        )
        found |= {hashes[value] for value in erased}
    return found


def erased_hashes(session: Session) -> set[str]:
    """The hashes of every address erased in the session's tenant."""
    return set(session.exec(select(Erasure.email_hash)).all())


Eraser = Callable[[Session, str, datetime], int]
"""Erases a normalised address from what a layer above tenants keeps of it (the funnel's
leads) in the session's tenant, and says how many rows it anonymised. Handed to
:func:`erase` by whatever composes the engine, since tenants imports no layer above it."""


@dataclass(frozen=True)
class Erased:
    """What an erasure did: contacts anonymised, suppressions and consent records cleared,
    and what else it anonymised (``others``: a name and a row count: the events whose data
    held the address, and what each eraser from above anonymised)."""

    contacts: int
    suppressions: int
    consent_records: int
    already: bool
    others: tuple[tuple[str, int], ...] = ()


def erase(
    session: Session,
    email: str,
    *,
    now: datetime,
    source: str = "command",
    also: Mapping[str, Eraser] | None = None,
) -> Erased:
    """Erase ``email`` from the session's tenant: its contacts (every partner's) lose their
    address, names and company and their consent; their deliveries lose the address (and
    their error texts it); the events whose data holds it (a bounce's recipient and
    diagnostic, a form's fields) lose it; the suppressions naming it are replaced by its
    hash; consent records keep only the hash.

    A later import of the address is refused, and no send reaches it. ``also`` erases it
    from what the layers above keep (by name: the funnel's leads), in the same transaction.
    """
    tenant_id = session_tenant(session)
    address = normalise_email(email)
    if "@" not in address:
        raise UserError(f"{email!r} is not an email address")
    digest = email_hash(tenant_id, address)
    already = session.exec(select(Erasure.id).where(Erasure.email_hash == digest)).first()
    contact_ids = list(
        session.exec(select(Contact.id).where(func.lower(col(Contact.email)) == address)).all()
    )
    if contact_ids:
        session.execute(
            update(Contact)
            .where(col(Contact.id).in_(contact_ids))
            .values(
                email="",
                first_name="",
                last_name="",
                company="",
                consent=False,
                external_id=literal("erased-", String) + cast(col(Contact.id), String),
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        session.execute(
            update(Delivery)
            .where(col(Delivery.contact_id).in_(contact_ids))
            .values(email="")
            .execution_options(synchronize_session=False)
        )
    suppressions = 0
    for model in (Suppression, PartnerSuppression):
        result = session.execute(
            delete(model)
            .where(col(model.email) == address)
            .execution_options(synchronize_session=False)
        )
        suppressions += int(getattr(result, "rowcount", 0) or 0)
    records = session.execute(
        update(ConsentRecord)
        .where(col(ConsentRecord.email_hash) == digest)
        .values(email="")
        .execution_options(synchronize_session=False)
    )
    if already is None:
        session.add(Erasure(email_hash=digest, erased_at=now))
    session.add(
        ConsentRecord(
            email_hash=digest,
            granted=False,
            occurred_at=now,
            method="erasure",
            source=source[:300],
            recorded_at=now,
        )
    )
    events = _erase_from_events(session, address)
    _erase_from_delivery_errors(session, address, [i for i in contact_ids if i is not None])
    others = tuple((name, eraser(session, address, now)) for name, eraser in (also or {}).items())
    session.flush()
    return Erased(
        contacts=len(contact_ids),
        suppressions=suppressions,
        consent_records=int(getattr(records, "rowcount", 0) or 0),
        already=already is not None,
        others=(("events", events), *others) if events else others,
    )


ERASED_TEXT = "[erased]"
"""What an erased address becomes inside a longer text (a bounce's diagnostic, say)."""


def _erase_from_events(session: Session, address: str) -> int:
    """Remove the address from the data of the tenant's events that hold it (a bounce's
    recipient and diagnostic, a form's fields, a webhook's payload); how many changed."""
    # The stored JSON text holds the address as written, or \u-escaped when it is not
    # ASCII: either form, in any case, finds the event; the data itself is then searched.
    forms = {address, json.dumps(address)[1:-1].lower()}
    text = func.lower(cast(col(Event.data), String))
    query = select(Event).where(or_(*(text.contains(form, autoescape=True) for form in forms)))
    changed = 0
    for event in session.exec(query):
        data, found = _without(event.data, address)
        if found:
            event.data = data
            changed += 1
    return changed


def _without(value: Any, address: str) -> tuple[Any, bool]:
    """``value`` (JSON data) with every string holding ``address`` (in any case) cleared,
    or the address in it replaced by :data:`ERASED_TEXT`; and whether there was one."""
    if isinstance(value, str):
        if address not in value.lower():
            return value, False
        if value.strip().lower() == address:
            return "", True
        return _erased_in(value, address), True
    if isinstance(value, list):
        parts = [_without(item, address) for item in value]
        return [part for part, _ in parts], any(found for _, found in parts)
    if isinstance(value, dict):
        entries = {key: _without(item, address) for key, item in value.items()}
        keys = {key: _erased_in(key, address) if isinstance(key, str) else key for key in value}
        found = any(found for _, found in entries.values()) or any(
            keys[key] != key for key in value
        )
        return {keys[key]: item for key, (item, _) in entries.items()}, found
    return value, False


def _erased_in(text: str, address: str) -> str:
    return re.sub(re.escape(address), ERASED_TEXT, text, flags=re.IGNORECASE)


def _erase_from_delivery_errors(session: Session, address: str, contact_ids: list[int]) -> None:
    """Replace the address in the error texts of the erased contacts' deliveries (a
    server's "550 <anna@...>: no such user")."""
    if not contact_ids:
        return
    query = select(Delivery).where(
        col(Delivery.contact_id).in_(contact_ids),
        func.lower(col(Delivery.error)).contains(address, autoescape=True),
    )
    for delivery in session.exec(query):
        delivery.error = _without(delivery.error, address)[0]


def consent_records(session: Session) -> list[ConsentRecord]:
    """The tenant's consent records, oldest first."""
    query = select(ConsentRecord).order_by(col(ConsentRecord.recorded_at), col(ConsentRecord.id))
    return list(session.exec(query).all())


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
    its tenant, for every partner or for the contact's partner as the tenant chose."""
    tenant_id, contact_id, dispatch_id = _unsubscribe_ids(settings, token, now)
    with tenant_session(engine, tenant_id) as session:
        contact = session.get(Contact, int(contact_id))
        if contact is None or not contact.email:  # gone, or erased since
            raise InvalidToken("this link is not valid")
        source = f"link:{dispatch_id}"
        added = withdraw(
            session,
            contact.email,
            contact.partner_id,
            reason="unsubscribed",
            source=source,
            now=now,
        )
        if added:
            session.add(
                ConsentRecord(
                    contact_id=contact.id,
                    partner_id=contact.partner_id,
                    email=normalise_email(contact.email),
                    email_hash=email_hash(tenant_id, contact.email),
                    granted=False,
                    occurred_at=now,
                    method="unsubscribe link",
                    source=source,
                    recorded_at=now,
                )
            )
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


def suppressed_happening(
    *,
    row_id: int,
    email: str,
    reason: str,
    source: str,
    partner_id: int | None,
    created_at: datetime,
) -> Happening:
    """What the outgoing webhooks report of a suppression (``contact.suppressed``): one
    shape whether the row was written by a session (web.outgoing_events) or in bulk by an
    import (:mod:`partnercast.tenants.importing`)."""
    table = "partner" if partner_id is not None else "tenant"
    data = {
        "email": email,
        "reason": reason,
        "source": source,
        "partner_id": partner_id,  # None: no partner of the vendor mails the address
    }
    return Happening(
        "contact.suppressed", f"suppression:{table}:{row_id}", f"contact:{email}", data, created_at
    )
