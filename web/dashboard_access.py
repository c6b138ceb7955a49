"""Who is at the concierge dashboard, in which tenant, covering which partners: the
:class:`Desk` every dashboard route depends on, and how its pages are rendered.

* The tenant comes from the URL (``/dashboard/{tenant}/...``); a visitor who may not see
  it, or who sees it only as a partner user, gets the same 404 as a tenant that does not
  exist (:func:`partnercast.web.identity.tenant_for`).
* The partners: those the principal covers (``concierge.coverage``: a concierge's
  assigned partners; everyone for agency admins and vendor marketers). Every list is
  filtered by them and every other partner's id is answered 404 (:meth:`Desk.partner`).
* Writing: concierge work (tasks, reminders, reviews, capacity) needs ``tasks.write``,
  acting on a partner's behalf ``enrollments.decide``, inviting ``users.invite``; a
  vendor marketer reads the tenant and is refused (403) any of them (:meth:`Desk.require`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from jinja2_fragments import render_block
from sqlalchemy.engine import Engine as SqlEngine
from sqlmodel import Session
from starlette.exceptions import HTTPException

from partnercast.concierge.coverage import covered_partner_ids
from partnercast.core.tenancy import tenant_session
from partnercast.tenants.access import DECIDE, INVITE, TASKS_WRITE
from partnercast.tenants.models import Partner, Tenant
from partnercast.web.context import Engine
from partnercast.web.i18n import gettext_for
from partnercast.web.identity import SignedIn, Visitor, tenant_for
from partnercast.web.shell import PAGE_HEADERS, environment, render_page, shell_context

DOMAIN = "dashboard"


class NotAllowed(Exception):
    """The visitor sees the tenant but may not do this here: answered 403
    (:func:`not_allowed`; an HTTPException would be answered 404 by the application)."""


async def not_allowed(request: Request, error: Exception) -> HTMLResponse:
    response: HTMLResponse = render_page(
        request,
        "dashboard/not_allowed.html",
        visitor=getattr(request.state, "visitor", None),
        domain=DOMAIN,
        status=403,
    )
    return response


@dataclass(frozen=True)
class Desk:
    """The signed-in visitor at one tenant's dashboard."""

    visitor: Visitor
    tenant: Tenant
    engine: SqlEngine
    covered: frozenset[int] | None  # the partner ids they cover; None: every partner

    @property
    def tenant_id(self) -> int:
        return self.tenant.id or 0

    @property
    def actor(self) -> str:
        """What audit trails and notes record as the author."""
        return self.visitor.principal.label

    def may(self, action: str) -> bool:
        return self.visitor.principal.may(action, self.tenant_id)

    @property
    def may_work(self) -> bool:
        return self.may(TASKS_WRITE)

    @property
    def may_decide(self) -> bool:
        return self.may(DECIDE)

    @property
    def may_invite(self) -> bool:
        return self.may(INVITE)

    def gettext(self, message: str) -> str:
        """``message`` in the visitor's language (the dashboard's catalogue)."""
        return gettext_for(self.visitor.locale, DOMAIN)(message)

    def require(self, action: str) -> None:
        """403 unless the visitor may do ``action`` here (a vendor marketer reading)."""
        if not self.may(action):
            raise NotAllowed(action)

    def covers(self, partner_id: int | None) -> bool:
        return self.covered is None or (partner_id is not None and partner_id in self.covered)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """The tenant's scoped session: every query of tenant data goes through it."""
        with tenant_session(self.engine, self.tenant_id) as session:
            yield session

    def partner(self, session: Session, partner_id: int) -> Partner:
        """The tenant's partner ``partner_id`` if the visitor covers it; 404 otherwise."""
        partner = session.get(Partner, partner_id) if self.covers(partner_id) else None
        if partner is None:
            raise HTTPException(404)
        return partner

    def url(self, path: str = "") -> str:
        return f"/dashboard/{self.tenant.slug}{path}"


def desk(tenant: str, visitor: SignedIn, engine: Engine) -> Desk:
    found = tenant_for(visitor, tenant, engine)
    principal = visitor.principal
    if not principal.is_staff_in(found.id or 0):
        raise HTTPException(404)  # a partner user has the portal, not the dashboard
    with tenant_session(engine, found.id or 0) as session:
        covered = covered_partner_ids(session, principal.partner_scope(found.id or 0))
    return Desk(visitor, found, engine, covered)


DeskOf = Annotated[Desk, Depends(desk)]

NAV = (
    ("approvals", "Approvals"),
    ("partners", "Partners"),
    ("tasks", "Tasks"),
    ("capacity", "Capacity"),
)


def render(
    request: Request,
    desk: Desk,
    template: str,
    *,
    block: str | None = None,
    status: int = 200,
    **values: Any,
) -> HTMLResponse:
    """A dashboard page (or one ``block`` of it, the fragment htmx swaps in), in the
    visitor's language, with the CSRF field every form carries."""
    context = {
        **shell_context(
            request, visitor=desk.visitor, engine=desk.engine, domain=DOMAIN, tenant=desk.tenant
        ),
        "desk": desk,
        "nav": NAV,
        **values,
    }
    name = f"dashboard/{template}"
    if block is None:
        body = environment().get_template(name).render(**context)
    else:
        body = render_block(environment(), name, block, **context)
    return HTMLResponse(body, status_code=status, headers=PAGE_HEADERS)
