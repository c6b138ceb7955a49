"""The concierge dashboard, ``/dashboard/{tenant}/...``: what a concierge reads.

* ``approvals``: the enrollments waiting for their partner, longest first, with the
  reminders sent (:mod:`partnercast.concierge.approval_queue`), a reminder button and the
  decisions the agency may take on the partner's behalf (with a reason);
* ``partners``: partners by campaign with their enrollment state, filtered by campaign
  and state (:func:`partnercast.campaigns.reporting.partner_rows`);
* ``tasks``: the open tasks by due date, to assign, annotate and close
  (:mod:`partnercast.concierge.tasks`; the forms are htmx fragments,
  :mod:`partnercast.web.dashboard_actions`);
* ``capacity``: the load per concierge and language against the cap, and the proposed
  balance (:mod:`partnercast.concierge.capacity`), each move applicable on its own, its
  reasons worded in the visitor's language (:mod:`partnercast.web.dashboard_reasons`);
* ``partners/{id}``: one partner's weekly review agenda and the notes of the reviews
  held (:mod:`partnercast.concierge.review`), its users and whether they accepted their
  invitation, and the invite button.

Who sees what: :mod:`partnercast.web.dashboard_access`. The writes are in
:mod:`partnercast.web.dashboard_actions`.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import RedirectResponse
from sqlmodel import col, select
from starlette.exceptions import HTTPException

from partnercast.campaigns.approval import STATES
from partnercast.campaigns.store import list_campaigns
from partnercast.concierge import capacity, tasks
from partnercast.concierge.approval_queue import partners_by_campaign
from partnercast.core.tenancy import plain_session
from partnercast.tenants.models import Tenant
from partnercast.web import dashboard_actions
from partnercast.web.context import Engine, Now
from partnercast.web.dashboard_access import DeskOf, NotAllowed, not_allowed, render
from partnercast.web.dashboard_reasons import worded
from partnercast.web.dashboard_views import SHOWN, approvals_page, partner_names, partner_view
from partnercast.web.identity import SignedIn

router = APIRouter(include_in_schema=False)
STYLE = Path(__file__).resolve().parent / "templates" / "dashboard" / "dashboard.css"


@router.get("/dashboard/-/dashboard.css")
def style() -> Response:
    return Response(
        STYLE.read_bytes(),
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/dashboard")
def home(visitor: SignedIn, engine: Engine) -> Response:
    """The first tenant the visitor works in (an agency admin: the first of all)."""
    with plain_session(engine) as session:
        tenants = session.exec(select(Tenant).order_by(col(Tenant.name), col(Tenant.id))).all()
        slugs = [tenant.slug for tenant in tenants if visitor.principal.is_staff_in(tenant.id or 0)]
    if not slugs:
        raise HTTPException(404)
    return RedirectResponse(f"/dashboard/{slugs[0]}/approvals", status_code=303)


@router.get("/dashboard/{tenant}")
def tenant_home(desk: DeskOf) -> Response:
    return RedirectResponse(desk.url("/approvals"), status_code=303)


@router.get("/dashboard/{tenant}/approvals")
def approvals(
    request: Request,
    desk: DeskOf,
    now: Now,
    campaign: str = "",
    reminded: int = 0,
    decided: int = 0,
) -> Response:
    message = ""
    if reminded:
        message = "reminded"
    elif decided:
        message = "decided"
    return approvals_page(request, desk, now, campaign=campaign, message=message)


@router.get("/dashboard/{tenant}/partners")
def partners(request: Request, desk: DeskOf, campaign: str = "", state: str = "") -> Response:
    with desk.session() as session:
        boards = partners_by_campaign(
            session, desk.covered, campaign=campaign, state=state if state in STATES else ""
        )
        campaigns = [(c.key, c.name) for c in list_campaigns(session)]
    return render(
        request,
        desk,
        "partners.html",
        section="partners",
        boards=boards,
        campaigns=campaigns,
        campaign=campaign,
        state=state,
        states=STATES,
    )


@router.get("/dashboard/{tenant}/tasks")
def task_list(request: Request, desk: DeskOf, now: Now, owner: str = "") -> Response:
    with desk.session() as session:
        concierges = tasks.list_concierges(session)
        names = {c.name for c in concierges}
        query = tasks.TaskFilter(owner=owner if owner in names else None)
        rows = [
            task
            for task in tasks.list_tasks(session, query, now=now)
            if desk.covers(task.partner_id)
        ]
        total, rows = len(rows), rows[:SHOWN]
        partners = partner_names(session, {t.partner_id or 0 for t in rows})
    return render(
        request,
        desk,
        "tasks.html",
        section="tasks",
        tasks=rows,
        total=total,
        partners=partners,
        concierges=concierges,
        owners={c.id: c.name for c in concierges},
        owner=owner if owner in names else "",
        now=now,
    )


@router.get("/dashboard/{tenant}/capacity")
def capacity_page(request: Request, desk: DeskOf, moved: int | None = None) -> Response:
    with desk.session() as session:
        concierges = tasks.list_concierges(session)
        loads = capacity.loads(session)
        cap = tasks.concierge_settings(session).partners_per_language_cap
        proposal = capacity.propose_balance(session)
        over = capacity.overloads(session)
    moves = [move for move in proposal.moves if desk.covers(move.partner_id)]
    locale = desk.visitor.locale
    languages = sorted({lang for c in concierges for lang in c.languages})
    return render(
        request,
        desk,
        "capacity.html",
        section="capacity",
        concierges=concierges,
        loads=loads,
        cap=cap,
        languages=languages,
        moves=moves,
        hidden_moves=len(proposal.moves) - len(moves),
        explanations=[worded(reasons, locale) for reasons in proposal.reasoning],
        reasons={move.partner_id: worded(move.why, locale) for move in moves},
        uncovered=proposal.uncovered if desk.covered is None else {},
        overloads=over,
        message="" if moved is None else ("moved" if moved else "stale"),
    )


@router.get("/dashboard/{tenant}/partners/{partner_id}")
def partner_page(
    request: Request, desk: DeskOf, now: Now, partner_id: int, held: int = 0, invited: int = 0
) -> Response:
    return partner_view(request, desk, now, partner_id, held=held, invited=invited)


router.include_router(dashboard_actions.router)


def install(app: FastAPI) -> None:
    """Mount the dashboard: its routes, and the 403 answer to what a visitor may not do."""
    app.include_router(router)
    app.add_exception_handler(NotAllowed, not_allowed)
