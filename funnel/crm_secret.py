"""The per-tenant secret that signs CRM webhook calls (HMAC-SHA256 over the body).

The secret is shown once when made and kept Fernet-encrypted (it must be readable again
to check signatures, so a hash would not do). The CRM sends
``X-Partnercast-Signature: sha256=<hex digest of the raw body>``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from partnercast.core.secrets import secret_box
from partnercast.funnel.models import CrmSecret

SIGNATURE_HEADER = "X-Partnercast-Signature"
SCHEME = "sha256="


def new_secret(session: Session, settings: Any, *, now: datetime) -> str:
    """Make (or replace) the tenant's webhook secret and return it, the only time it shows."""
    secret = "whsec_" + secrets.token_urlsafe(32)
    sealed = secret_box(settings).seal({"secret": secret})
    row = session.exec(select(CrmSecret)).first()
    if row is None:
        row = CrmSecret(sealed=sealed, created_at=now)
    else:
        row.sealed, row.created_at = sealed, now
    session.add(row)
    session.flush()
    return secret


def sign(secret: str, body: bytes) -> str:
    """The header value a CRM sends for ``body``."""
    return SCHEME + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(session: Session, settings: Any, body: bytes, header: str | None) -> bool:
    """True only when the tenant has a secret and ``header`` signs ``body`` with it."""
    if not header or not header.startswith(SCHEME):
        return False
    row = session.exec(select(CrmSecret)).first()
    if row is None:
        return False
    secret = str(secret_box(settings).open(row.sealed).get("secret", ""))
    return bool(secret) and hmac.compare_digest(sign(secret, body), header.strip())
