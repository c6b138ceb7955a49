"""Who is asking, for the web pages: the signed-in :class:`Visitor` and the tenants they
may enter (FastAPI dependencies).

A page route takes ``visitor: SignedIn``: the visitor of a live session (the cookie of
:mod:`partnercast.web.sessions`), or, without one, the browser is sent to ``/sign-in``
(303, or ``HX-Redirect`` for an htmx request) and the route never runs. It then names its
tenant with :func:`tenant_for`, which answers 404 (the same page as an unknown address)
for a tenant the visitor may not see. A route taking an unsafe method also depends on
:data:`CsrfProtected` (re-exported from :mod:`partnercast.web.csrf`).

Which partners of the tenant a visitor sees: ``visitor.principal.partner_scope(tenant.id)``
resolved by :func:`partnercast.concierge.coverage.covered_partner_ids`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from sqlalchemy.engine import Engine as SqlEngine
from sqlmodel import col, select
from starlette.exceptions import HTTPException

from partnercast.core.tenancy import plain_session
from partnercast.plugins.web import Now
from partnercast.tenants.access import Principal
from partnercast.tenants.access_models import User
from partnercast.tenants.models import Tenant
from partnercast.tenants.users import principal_for_user
from partnercast.web.context import Engine
from partnercast.web.csrf import CsrfProtected, csrf_field, csrf_token
from partnercast.web.sessions import COOKIE, find_session


@dataclass
class Visitor:
    """A signed-in person: their user row, what they may do, their session and language."""

    user: User
    principal: Principal
    session_id: int
    locale: str
    session_public_id: str = ""
    tenant_in_view: int | None = None


class SignInRequired(Exception):
    """No live session: the page answers with a way to sign in (303 to /sign-in)."""

    def __init__(self, next_path: str = "") -> None:
        super().__init__("sign in first")
        self.next_path = next_path


def current_visitor(request: Request, engine: SqlEngine, now: datetime) -> Visitor | None:
    """The visitor of the request's session cookie, or None (no live session, or a user
    disabled since)."""
    found = find_session(engine, request.cookies.get(COOKIE), now=now)
    if found is None:
        return None
    with plain_session(engine) as session:
        user = session.get(User, found.user_id)
        if user is None or user.disabled:
            return None
        principal = principal_for_user(session, found.user_id)
    visitor = Visitor(
        user=user,
        principal=principal,
        session_id=found.id,
        locale=user.locale or "en",
        session_public_id=found.public_id,
        tenant_in_view=found.tenant_id,
    )
    request.state.visitor = visitor
    return visitor


def signed_in(request: Request, engine: Engine, now: Now) -> Visitor:
    """The dependency behind :data:`SignedIn`."""
    visitor = current_visitor(request, engine, now)
    if visitor is None:
        path = request.url.path
        if request.url.query:
            path += "?" + request.url.query
        raise SignInRequired(path if request.method == "GET" else "")
    return visitor


SignedIn = Annotated[Visitor, Depends(signed_in)]
"""A page route's parameter ``visitor: SignedIn``: the signed-in visitor (or a redirect)."""


def sign_in_url(next_path: str = "") -> str:
    """``/sign-in``, with ``?next=`` a local path to come back to."""
    if next_path.startswith("/") and not next_path.startswith("//"):
        return "/sign-in?next=" + quote(next_path, safe="/")
    return "/sign-in"


def _principal(visitor_or_principal: Visitor | Principal) -> Principal:
    if isinstance(visitor_or_principal, Visitor):
        return visitor_or_principal.principal
    return visitor_or_principal


def tenant_for(visitor_or_principal: Visitor | Principal, slug: str, engine: SqlEngine) -> Tenant:
    """The tenant ``slug`` names, if the visitor may see it; 404 otherwise (exactly as for
    a tenant that does not exist, so that asking reveals nothing)."""
    principal = _principal(visitor_or_principal)
    with plain_session(engine) as session:
        tenant = session.exec(select(Tenant).where(Tenant.slug == slug)).first()
    if tenant is None or tenant.id is None or not principal.sees_tenant(tenant.id):
        raise HTTPException(404)
    return tenant


def visible_tenants(visitor_or_principal: Visitor | Principal, engine: SqlEngine) -> list[Tenant]:
    """Every tenant the visitor may enter, by name (an agency admin: all of them)."""
    principal = _principal(visitor_or_principal)
    with plain_session(engine) as session:
        tenants = session.exec(select(Tenant).order_by(col(Tenant.name), col(Tenant.id))).all()
    return [
        tenant for tenant in tenants if tenant.id is not None and principal.sees_tenant(tenant.id)
    ]


def home_path(visitor_or_principal: Visitor | Principal, tenant: Tenant) -> str:
    """Where the visitor works in ``tenant``: staff (agency, vendor marketer) on the
    dashboard, a partner user in the portal."""
    principal = _principal(visitor_or_principal)
    assert tenant.id is not None
    if principal.is_staff_in(tenant.id):
        return f"/dashboard/{tenant.slug}"
    return f"/portal/{tenant.slug}"


__all__ = [
    "CsrfProtected",
    "SignInRequired",
    "SignedIn",
    "Visitor",
    "csrf_field",
    "csrf_token",
    "current_visitor",
    "home_path",
    "sign_in_url",
    "signed_in",
    "tenant_for",
    "visible_tenants",
]
