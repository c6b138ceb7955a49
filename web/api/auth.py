"""Who is calling the API: ``Authorization: Bearer pct_...``, checked on every request.

A missing, malformed, unknown, altered, revoked or expired token is 401 (one problem
document, the same for all: the answer tells an attacker nothing). A live token becomes a
:class:`Caller`: its tenant, its one role (tenants.access.Principal), the partners it may
see, and the engine and instant of the request. Each token has its own rate limit (a
token bucket in the database, core/ratelimit.py, so it holds across ``serve --workers``);
over it, 429 with Retry-After.

``last_used_at`` is written at most once a minute per token, in the same short system
transaction that found it: a busy client does not write on every request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine
from sqlmodel import Session

from partnercast.core.ratelimit import acquire
from partnercast.core.settings import Settings
from partnercast.core.tenancy import system_session
from partnercast.tenants.access import READ, PartnerScope, Principal, Role
from partnercast.tenants.api_tokens import find_live_token, principal_for_token
from partnercast.web.context import Now
from partnercast.web.problems import Problem

LAST_USED_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class RateLimit:
    """``burst`` requests at once, refilled at ``per_second``: the settings
    ``api_rate_burst`` and ``api_rate_per_second`` (by default 120 in a burst and 20 a
    second after)."""

    burst: int = 120
    per_second: float = 20.0


@dataclass
class Caller:
    """A request made with a live token."""

    engine: Engine
    settings: Settings
    now: datetime
    principal: Principal
    tenant_id: int
    token_id: int
    role: Role
    partner_id: int | None
    _visible: dict[str, frozenset[int] | None] = field(default_factory=dict)

    def require(self, action: str) -> None:
        """403 unless the token's role may do ``action`` at all in its tenant (for the
        partner it belongs to, when it is a partner's)."""
        if not self.principal.may(action, self.tenant_id, self.partner_id):
            role = self.role.value.replace("_", "-")
            raise Problem(403, f"a {role} token may not do {action}", kind="forbidden")

    def partners(self, session: Session, action: str = READ) -> frozenset[int] | None:
        """The ids of the partners this token may do ``action`` for; None: all of them."""
        if action not in self._visible:
            scope = self.principal.partner_scope(self.tenant_id, action=action)
            self._visible[action] = covered_partners(session, scope)
        return self._visible[action]

    def sees_partner(self, session: Session, partner_id: int, action: str = READ) -> bool:
        visible = self.partners(session, action)
        return visible is None or partner_id in visible


def covered_partners(session: Session, scope: PartnerScope) -> frozenset[int] | None:
    """A scope's partner ids (None: every partner of the session's tenant), with the
    partners each concierge in it covers (concierge/coverage.py)."""
    from partnercast.concierge.coverage import covered_partner_ids

    return covered_partner_ids(session, scope)


UNAUTHORISED = {"WWW-Authenticate": 'Bearer realm="partnercast"'}


bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="An API token: `partnercast api-tokens create NAME --role ROLE --tenant T`.",
)


def _bearer(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None or not credentials.credentials.strip():
        raise Problem(
            401,
            "send an API token: Authorization: Bearer pct_... (partnercast api-tokens create)",
            kind="unauthorised",
            headers=UNAUTHORISED,
        )
    return credentials.credentials.strip()


def authenticate(
    request: Request,
    now: Now,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Caller:
    """The FastAPI dependency behind :data:`Authenticated`."""
    token = _bearer(credentials)
    engine: Engine = request.app.state.engine
    with system_session(engine, reason="an API token names its own tenant") as session:
        row = find_live_token(session, token, now=now)
        if row is None or row.id is None:
            raise Problem(
                401,
                "this API token is not valid: unknown, altered, revoked or expired",
                kind="unauthorised",
                headers=UNAUTHORISED,
            )
        if row.last_used_at is None or row.last_used_at <= now - LAST_USED_EVERY:
            row.last_used_at = now
            session.add(row)
        principal = principal_for_token(row)
        caller = Caller(
            engine=engine,
            settings=request.app.state.settings,
            now=now,
            principal=principal,
            tenant_id=row.tenant_id,
            token_id=row.id,
            role=Role(row.role),
            partner_id=row.partner_id,
        )
    limit: RateLimit = request.app.state.rate_limit
    granted = acquire(
        engine,
        f"api-token:{caller.token_id}",
        1,
        now,
        limit.per_second,
        limit.burst,
        tenant_id=caller.tenant_id,
        channel="api",
    )
    if granted.granted < 1:
        wait = max(1, math.ceil(granted.wait_seconds))
        raise Problem(
            429,
            f"this token's rate limit ({limit.burst} at once, {limit.per_second:g} a second) "
            f"is used up: retry in {wait} s",
            kind="rate-limited",
            headers={"Retry-After": str(wait)},
        )
    return caller


Authenticated = Annotated[Caller, Depends(authenticate)]
