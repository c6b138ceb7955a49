"""Magic sign-in links: made for a user, sent by email, redeemed once.

A link is ``<public address>/sign-in/<token>``: the token is signed (core.signing, purpose
``sign-in-link``, stamped when made) and carries the link row's public id and a secret
whose SHA-256 the row keeps. A link is refused (nothing signed in) when its token is
altered or its signature's age is past the purpose's lifetime, when its secret does not
match, when the row says it has expired, or when it was used: the first POST that redeems
it sets ``used_at`` with ``UPDATE ... WHERE used_at IS NULL``, so two at once cannot both
win. Lifetimes: :data:`SIGN_IN_LIFETIME` (15 minutes) for a link asked for on the sign-in
page, :data:`INVITATION_LIFETIME` (7 days) for an invitation.

Opening a link (GET) only reads (:func:`inspect`): mail scanners follow links, so only
the button on that page (a POST, :func:`redeem`) signs in.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from partnercast.core.settings import Settings
from partnercast.core.signing import InvalidToken, sign, unsign
from partnercast.core.tenancy import plain_session
from partnercast.core.timeutil import as_utc
from partnercast.tenants.access_models import SignInLink, User
from partnercast.tenants.users import mark_signed_in
from partnercast.web.sessions import hash_secret, new_public_id

PURPOSE = "sign-in-link"
SIGN_IN = "sign-in"
INVITATION = "invitation"
SIGN_IN_LIFETIME = timedelta(minutes=15)
INVITATION_LIFETIME = timedelta(days=7)
LIFETIMES = {SIGN_IN: SIGN_IN_LIFETIME, INVITATION: INVITATION_LIFETIME}
LONGEST = max(LIFETIMES.values())


@dataclass(frozen=True)
class IssuedLink:
    url: str
    token: str
    expires_at: datetime


@dataclass(frozen=True)
class LinkView:
    """What a link's page shows: whose it is and whether it still works (``usable``)."""

    usable: bool
    email: str = ""
    locale: str = "en"
    purpose: str = SIGN_IN


def issue(
    session: Session,
    settings: Settings,
    user: User,
    *,
    now: datetime,
    purpose: str = SIGN_IN,
    lifetime: timedelta | None = None,
    requested_from: str = "",
    next_path: str = "",
) -> IssuedLink:
    """A new link for ``user`` (a row in ``session``'s transaction) and its URL."""
    if purpose not in LIFETIMES:
        raise ValueError(f"unknown sign-in link purpose {purpose!r}")
    if user.id is None:
        raise ValueError("save the user first")
    public_id, secret = new_public_id(), secrets.token_urlsafe(32)
    expires_at = now + min(lifetime or LIFETIMES[purpose], LONGEST)
    session.add(
        SignInLink(
            public_id=public_id,
            secret_hash=hash_secret(secret),
            user_id=user.id,
            email=user.email,
            purpose=purpose,
            created_at=now,
            expires_at=expires_at,
            requested_from=requested_from[:64],
        )
    )
    session.flush()
    payload: dict[str, Any] = {"l": public_id, "s": secret}
    if _local(next_path):
        payload["n"] = next_path
    token = sign(settings, PURPOSE, payload, now=now)
    url = f"{settings.public_base_url.rstrip('/')}/sign-in/{token}"
    return IssuedLink(url, token, expires_at)


def _local(path: str) -> bool:
    return path.startswith("/") and not path.startswith("//") and len(path) <= 500


def _read(settings: Settings, token: str, now: datetime) -> tuple[str, str, str] | None:
    """(public id, secret, next path) of a well-signed token within the longest lifetime."""
    try:
        payload = unsign(
            settings, PURPOSE, token, max_age_seconds=int(LONGEST.total_seconds()), now=now
        )
    except InvalidToken:
        return None
    if not isinstance(payload, dict):
        return None
    public_id, secret, next_path = payload.get("l"), payload.get("s"), payload.get("n", "")
    if not (isinstance(public_id, str) and isinstance(secret, str) and isinstance(next_path, str)):
        return None
    return public_id, secret, next_path if _local(next_path) else ""


def _row(
    session: Session, settings: Settings, token: str, now: datetime
) -> tuple[SignInLink, str] | None:
    """The link row a token names if it still works at ``now`` (not used, not expired)."""
    read = _read(settings, token, now)
    if read is None:
        return None
    public_id, secret, next_path = read
    row = session.exec(select(SignInLink).where(SignInLink.public_id == public_id)).first()
    if row is None or not hmac.compare_digest(row.secret_hash, hash_secret(secret)):
        return None
    stamped_limit = LIFETIMES.get(row.purpose, SIGN_IN_LIFETIME)
    if row.used_at is not None or as_utc(row.expires_at) <= now:
        return None
    if as_utc(row.created_at) + stamped_limit < now:
        return None
    return row, next_path


def inspect(engine: Engine, settings: Settings, token: str, *, now: datetime) -> LinkView:
    """Whether the link still works, and whose it is: changes nothing."""
    with plain_session(engine) as session:
        found = _row(session, settings, token, now)
        if found is None:
            return LinkView(usable=False)
        row = found[0]
        user = session.get(User, row.user_id)
        if user is None or user.disabled:
            return LinkView(usable=False)
        return LinkView(True, user.email, user.locale, row.purpose)


@dataclass(frozen=True)
class Redeemed:
    user_id: int
    next_path: str
    purpose: str


def redeem(engine: Engine, settings: Settings, token: str, *, now: datetime) -> Redeemed | None:
    """Use the link (once): the user it signs in, or None (altered, expired, used, or the
    user disabled). Marks the user signed in (and their invitations accepted)."""
    with plain_session(engine) as session:
        found = _row(session, settings, token, now)
        if found is None:
            return None
        row, next_path = found
        result = session.execute(
            update(SignInLink)
            .where(col(SignInLink.id) == row.id, col(SignInLink.used_at).is_(None))
            .values(used_at=now)
        )
        if getattr(result, "rowcount", 0) != 1:
            return None  # another request used it a moment ago
        user = session.get(User, row.user_id)
        if user is None or user.disabled:
            return None
        mark_signed_in(session, user, now=now)
        assert user.id is not None
        return Redeemed(user.id, next_path, row.purpose)


__all__ = [
    "INVITATION",
    "INVITATION_LIFETIME",
    "SIGN_IN",
    "SIGN_IN_LIFETIME",
    "IssuedLink",
    "LinkView",
    "Redeemed",
    "inspect",
    "issue",
    "redeem",
]
