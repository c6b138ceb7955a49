"""REST API tokens: made per tenant and role, shown once, kept only as a hash, revocable.

A token reads ``pct_<public id>_<secret>``: the public id finds the row, the SHA-256 of
the whole token is compared in constant time. 256 random bits need no slow hash; a
leaked database gives no usable token. Tokens are never logged: :func:`describe` is what
may be printed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from sqlmodel import Session, col, select

from partnercast.core.errors import NotFound, UserError
from partnercast.core.tenancy import session_tenant
from partnercast.tenants.access import Grant, Principal, Role
from partnercast.tenants.access_models import ApiToken

PREFIX = "pct_"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create_token(
    session: Session,
    *,
    name: str,
    role: Role,
    now: datetime,
    partner_id: int | None = None,
    concierge_id: int | None = None,
    created_by: str = "",
    expires_at: datetime | None = None,
) -> tuple[ApiToken, str]:
    """A new token of the session's tenant; returns the row and the token, which exists
    nowhere else (show it once)."""
    session_tenant(session)  # a tenant-scoped session stamps the row with its tenant
    if (role is Role.PARTNER) != (partner_id is not None):
        raise UserError("a partner token, and only a partner token, belongs to one partner")
    if not name.strip():
        raise UserError("a token needs a name (what it is for)")
    public_id = secrets.token_hex(6)
    token = f"{PREFIX}{public_id}_{secrets.token_urlsafe(32)}"
    row = ApiToken(
        public_id=public_id,
        token_hash=_digest(token),
        name=name.strip()[:100],
        role=role.value,
        partner_id=partner_id,
        concierge_id=concierge_id,
        created_by=created_by[:254],
        created_at=now,
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    return row, token


def find_live_token(session: Session, token: str, *, now: datetime) -> ApiToken | None:
    """The live (not revoked, not expired) token row matching ``token``, else None.

    Reads across tenants (the token names its tenant), so ``session`` is a system session.
    """
    parts = token.strip().removeprefix(PREFIX).split("_", 1)
    if not token.startswith(PREFIX) or len(parts) != 2 or len(parts[0]) != 12:
        return None
    row = session.exec(select(ApiToken).where(ApiToken.public_id == parts[0])).first()
    if row is None or not hmac.compare_digest(row.token_hash, _digest(token.strip())):
        return None
    if row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
        return None
    return row


def principal_for_token(row: ApiToken) -> Principal:
    """What a token may do: its one role in its one tenant."""
    grant = Grant(
        role=Role(row.role),
        tenant_id=row.tenant_id,
        partner_id=row.partner_id,
        concierge_id=row.concierge_id,
    )
    return Principal(label=f"API token {row.name}", grants=(grant,), token_id=row.id)


def revoke_token(session: Session, public_id: str, *, now: datetime) -> ApiToken:
    """Revoke the session tenant's token with this public id (or full token)."""
    key = public_id.strip().removeprefix(PREFIX).split("_", 1)[0]
    row = session.exec(select(ApiToken).where(ApiToken.public_id == key)).first()
    if row is None:
        raise NotFound(f"no API token {key!r}")
    if row.revoked_at is None:
        row.revoked_at = now
        session.add(row)
        session.flush()
    return row


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.exec(select(ApiToken).order_by(col(ApiToken.id))).all())


def describe(row: ApiToken) -> str:
    """What may be shown of a token: its public id, name and role, never the secret."""
    return f"{PREFIX}{row.public_id}_… ({row.name}, {row.role.replace('_', '-')})"
