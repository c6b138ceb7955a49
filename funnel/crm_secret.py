"""The per-tenant secret that signs incoming webhooks (the CRM's lead stages, mail
feedback), and their verification by the Standard Webhooks scheme (standardwebhooks.com).

A sender signs each message with three headers:

* ``webhook-id``: the message's own id, the same on every retry of it;
* ``webhook-timestamp``: when it was sent, in whole seconds since the epoch;
* ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<raw body>">``
  with the secret (several space-separated signatures are allowed, while a sender rolls
  its secret).

A message is accepted when one signature matches, its timestamp is within
:data:`TOLERANCE` of the receiver's ``now`` (both ways), and this tenant has not accepted
its id before (:func:`claim_message`, in the same transaction as what the message does):
so a captured message replayed later is refused, soon or late. The old scheme
(``X-Partnercast-Signature``, an HMAC of the body alone) is refused with a line that says
what to send instead: it let a captured body be replayed for ever (docs/funnel.md,
"Migrating from X-Partnercast-Signature").

The secret (``whsec_`` and 32 random bytes in base64, as the scheme's libraries expect)
is shown once when made and kept Fernet-encrypted (it must be readable again to check
signatures, so a hash would not do). Signing uses the ``standardwebhooks`` library.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select
from standardwebhooks import Webhook

from partnercast.core.secrets import SecretBox, secret_box
from partnercast.core.tenancy import session_tenant
from partnercast.core.timeutil import as_utc
from partnercast.funnel.models import CrmSecret, WebhookMessage

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
HEADERS = (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER)
LEGACY_HEADER = "X-Partnercast-Signature"
SECRET_PREFIX = "whsec_"
TOLERANCE = timedelta(minutes=5)
"""How far a message's timestamp may be from the receiver's clock (the scheme's default)."""
KEEP_IDS = timedelta(hours=1)
"""How long accepted ids are kept: past TOLERANCE, the timestamp alone refuses a replay."""
MAX_ID_LENGTH = 255

UNSIGNED = (
    "unsigned: send the Standard Webhooks headers webhook-id, webhook-timestamp and "
    "webhook-signature (v1,<base64 HMAC-SHA256 of '<id>.<timestamp>.<body>'> with the "
    "tenant's secret from `partnercast crm secret`)"
)
LEGACY = (
    f"{LEGACY_HEADER} (a signature of the body alone) is no longer accepted: it let a "
    "captured call be replayed; sign with the Standard Webhooks headers webhook-id, "
    "webhook-timestamp and webhook-signature (docs/funnel.md)"
)


class NotAccepted(Exception):
    """Why a signed message is refused (said to the sender in one line)."""


@dataclass(frozen=True)
class SignedMessage:
    """A message whose signature and timestamp verified: its id and the sender's time."""

    message_id: str
    sent_at: datetime


def new_secret(session: Session, settings: Any, *, now: datetime) -> str:
    """Make (or replace) the tenant's webhook secret and return it, the only time it shows."""
    secret = SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")
    sealed = secret_box(settings).seal({"secret": secret})
    row = session.exec(select(CrmSecret)).first()
    if row is None:
        row = CrmSecret(sealed=sealed, created_at=now)
    else:
        row.sealed, row.created_at = sealed, now
    session.add(row)
    session.flush()
    return secret


def verify_secret(session: Session, settings: Any) -> str | None:
    """The tenant's webhook secret, decrypted (None when it has none)."""
    row = session.exec(select(CrmSecret)).first()
    if row is None:
        return None
    return str(secret_box(settings).open(row.sealed).get("secret", "")) or None


def rotate_secrets(session: Session, box: SecretBox) -> int:
    """Re-encrypt every tenant's webhook secret with the first key (a system session)."""
    rows = session.exec(select(CrmSecret)).all()
    for row in rows:
        row.sealed = box.rotate(row.sealed)
        session.add(row)
    return len(rows)


def _key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret, decoded as the standardwebhooks library does."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX) + "==")


def sign(secret: str, message_id: str, sent_at: datetime, body: bytes) -> str:
    """The ``webhook-signature`` value for ``body`` (the library's own signing; a body
    that is not UTF-8, such as a raw bounce, is signed over its bytes the same way)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        stamp = int(as_utc(sent_at).timestamp())
        signed = f"{message_id}.{stamp}.".encode() + body
        digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
        return "v1," + base64.b64encode(digest).decode("ascii")
    return str(Webhook(secret).sign(message_id, as_utc(sent_at), text))


def signed_headers(
    secret: str, body: bytes, *, message_id: str, sent_at: datetime
) -> dict[str, str]:
    """The three headers a sender puts on ``body`` (tests, docs, and outgoing webhooks)."""
    return {
        ID_HEADER: message_id,
        TIMESTAMP_HEADER: str(int(as_utc(sent_at).timestamp())),
        SIGNATURE_HEADER: sign(secret, message_id, sent_at, body),
    }


def unsigned_reason(headers: Mapping[str, str]) -> str | None:
    """Why a request cannot be a signed message at all (said before any tenant is looked
    up, so it tells nothing about which exist), or None."""
    present = {name.lower() for name in headers}
    if all(name in present for name in HEADERS):
        return None
    return LEGACY if LEGACY_HEADER.lower() in present else UNSIGNED


def verify(
    secret: str | None, body: bytes, headers: Mapping[str, str], *, now: datetime
) -> SignedMessage:
    """The verified message, or NotAccepted saying why (a wrong signature and a tenant
    without a secret look the same)."""
    lower = {name.lower(): value for name, value in headers.items()}
    message_id = lower.get(ID_HEADER, "").strip()
    if not secret or not message_id or len(message_id) > MAX_ID_LENGTH:
        raise NotAccepted("signature not valid")
    try:
        sent_at = datetime.fromtimestamp(int(lower.get(TIMESTAMP_HEADER, "")), UTC)
    except (ValueError, OverflowError, OSError) as error:
        raise NotAccepted("webhook-timestamp is not whole seconds since the epoch") from error
    expected = sign(secret, message_id, sent_at, body).encode("ascii")
    given = [part.encode("ascii", "replace") for part in lower.get(SIGNATURE_HEADER, "").split()]
    if not any(hmac.compare_digest(expected, candidate) for candidate in given):
        raise NotAccepted("signature not valid")
    if abs(as_utc(now) - sent_at) > TOLERANCE:
        minutes = int(TOLERANCE.total_seconds() // 60)
        raise NotAccepted(
            f"webhook-timestamp is more than {minutes} minutes from the server's clock"
        )
    return SignedMessage(message_id, sent_at)


def claim_message(session: Session, message: SignedMessage, *, source: str, now: datetime) -> bool:
    """Record the message's id for the session's tenant; False when it was accepted
    before (a replay). Call it in the transaction that applies the message, so that a
    message that fails is not taken as accepted. Forgets ids older than :data:`KEEP_IDS`."""
    tenant_id = session_tenant(session)
    session.execute(
        delete(WebhookMessage).where(
            col(WebhookMessage.tenant_id) == tenant_id,
            col(WebhookMessage.received_at) < now - KEEP_IDS,
        )
    )
    row = WebhookMessage(
        message_id=message.message_id, source=source, sent_at=message.sent_at, received_at=now
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        return False
    return True
