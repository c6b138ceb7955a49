"""Signed-in browsers: web sessions kept in the database, named by an HttpOnly cookie.

The cookie ``partnercast_session`` holds ``<public_id>.<secret>``: the public id finds the
:class:`~partnercast.tenants.access_models.WebSession` row, the secret (256 random bits)
is checked against the SHA-256 kept there (the secret itself is never stored). The cookie
is HttpOnly (no script reads it), SameSite=Lax (a cross-site form post does not carry it;
CSRF tokens are checked besides, :mod:`partnercast.web.csrf`), ``Path=/``, and Secure when
the request came over https or the engine's public address is https.

How long a session lives: :data:`IDLE` (12 hours) after its last use, and never more than
:data:`ABSOLUTE` (7 days) after sign-in; then the visitor asks for a new link. Each use
slides the idle deadline (written at most every :data:`SLIDE_EVERY`, not on every
request). Sign-out revokes the row: the cookie is then worthless even if copied.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from fastapi import Request, Response
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from partnercast.core.settings import Settings
from partnercast.core.tenancy import plain_session
from partnercast.core.timeutil import as_utc
from partnercast.tenants.access_models import WebSession

COOKIE = "partnercast_session"
IDLE = timedelta(hours=12)
ABSOLUTE = timedelta(days=7)
SLIDE_EVERY = timedelta(minutes=10)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_public_id() -> str:
    return secrets.token_urlsafe(9)  # 12 characters


@dataclass(frozen=True)
class OpenSession:
    """A session found by its cookie: its row's id, public id, user and tenant in view."""

    id: int
    public_id: str
    user_id: int
    tenant_id: int | None


def open_session(
    engine: Engine,
    user_id: int,
    *,
    now: datetime,
    ip: str = "",
    user_agent: str = "",
    tenant_id: int | None = None,
) -> str:
    """A new session for ``user_id``: the cookie value (``public_id.secret``), shown once."""
    public_id, secret = new_public_id(), secrets.token_urlsafe(32)
    with plain_session(engine) as session:
        session.add(
            WebSession(
                public_id=public_id,
                secret_hash=hash_secret(secret),
                user_id=user_id,
                tenant_id=tenant_id,
                created_at=now,
                expires_at=min(now + IDLE, now + ABSOLUTE),
                ip=ip[:64],
                user_agent=user_agent[:400],
            )
        )
    return f"{public_id}.{secret}"


def split_cookie(value: str | None) -> tuple[str, str] | None:
    """(public id, secret) of a well-formed cookie value, else None."""
    if not value or value.count(".") != 1:
        return None
    public_id, secret = value.split(".")
    if not (0 < len(public_id) <= 16 and 0 < len(secret) <= 128):
        return None
    return public_id, secret


def find_session(engine: Engine, value: str | None, *, now: datetime) -> OpenSession | None:
    """The live session the cookie value names (its idle deadline slid), or None: unknown,
    altered, revoked, idle too long or past its absolute limit."""
    parts = split_cookie(value)
    if parts is None:
        return None
    public_id, secret = parts
    with plain_session(engine) as session:
        row = session.exec(select(WebSession).where(WebSession.public_id == public_id)).first()
        if row is None or not hmac.compare_digest(row.secret_hash, hash_secret(secret)):
            return None
        if row.revoked_at is not None or as_utc(row.expires_at) <= now:
            return None
        limit = as_utc(row.created_at) + ABSOLUTE
        if limit <= now:
            return None
        wanted = min(now + IDLE, limit)
        if wanted - as_utc(row.expires_at) >= SLIDE_EVERY:
            row.expires_at = wanted
            session.add(row)
        assert row.id is not None
        return OpenSession(row.id, row.public_id, row.user_id, row.tenant_id)


def revoke_session(engine: Engine, session_id: int, *, now: datetime) -> None:
    """End one session (sign-out): its cookie opens nothing any more."""
    with plain_session(engine) as session:
        session.execute(
            update(WebSession)
            .where(col(WebSession.id) == session_id, col(WebSession.revoked_at).is_(None))
            .values(revoked_at=now)
        )


def revoke_user_sessions(engine: Engine, user_id: int, *, now: datetime) -> int:
    """End every session of a user (removed, disabled). The number ended."""
    with plain_session(engine) as session:
        result = session.execute(
            update(WebSession)
            .where(col(WebSession.user_id) == user_id, col(WebSession.revoked_at).is_(None))
            .values(revoked_at=now)
        )
        return int(getattr(result, "rowcount", 0) or 0)


def set_tenant_in_view(engine: Engine, session_id: int, tenant_id: int) -> None:
    with plain_session(engine) as session:
        session.execute(
            update(WebSession).where(col(WebSession.id) == session_id).values(tenant_id=tenant_id)
        )


def is_secure(request: Request, settings: Settings) -> bool:
    """Whether cookies get the Secure flag: the request came over https (uvicorn's
    proxy headers set the scheme behind a trusted proxy) or the public address is https."""
    return request.url.scheme == "https" or urlsplit(settings.public_base_url).scheme == "https"


def set_session_cookie(response: Response, value: str, *, secure: bool) -> None:
    response.set_cookie(
        COOKIE,
        value,
        max_age=int(ABSOLUTE.total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure,
    )


def clear_session_cookie(response: Response, *, secure: bool) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=secure)


__all__ = [
    "ABSOLUTE",
    "COOKIE",
    "IDLE",
    "OpenSession",
    "clear_session_cookie",
    "find_session",
    "is_secure",
    "open_session",
    "revoke_session",
    "set_session_cookie",
]
