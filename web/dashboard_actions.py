"""What a concierge does at the dashboard: every unsafe-method route of it.

Each route depends on the :class:`~partnercast.web.dashboard_access.Desk` (the tenant and
the partners the visitor covers: another tenant's or an uncovered partner's id is 404),
on the CSRF token (403 without it) and checks the action the visitor may do (403 for a
vendor marketer). What it changes goes through the engine's own functions:

* a reminder: an email to the partner's point of contact in the partner's language
  (:mod:`partnercast.web.dashboard_mail`), recorded on the enrollment
  (:func:`partnercast.concierge.approval_queue.record_reminder`);
* a decision on the partner's behalf, for the campaign or one of its touches:
  :func:`partnercast.campaigns.decisions.decide`, with the reason it requires, the
  address and browser, and the fingerprint of the content the page showed;
* tasks: :mod:`partnercast.concierge.tasks` (assign, note, close as done or dismiss),
  answered with the task's row for htmx to swap in, or a redirect back to the list
  without JavaScript;
* a proposed capacity move: :func:`partnercast.concierge.capacity.apply_balance` with that
  one move of a proposal made afresh;
* a weekly review held: :func:`partnercast.concierge.review.hold_review`;
* an invitation: :func:`partnercast.web.invitations.invite_partner`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse
from sqlmodel import Session, select
from starlette.exceptions import HTTPException

from partnercast.campaigns import decisions
from partnercast.campaigns.approval import TransitionRefused
from partnercast.campaigns.models import Enrollment
from partnercast.concierge import capacity, review, tasks
from partnercast.concierge.approval_queue import Waiting, record_reminder, waiting_enrollment
from partnercast.concierge.models import Concierge, ConciergeTask
from partnercast.core.errors import NotFound, UserError
from partnercast.tenants.access import DECIDE, INVITE, TASKS_WRITE
from partnercast.web import invitations, mail
from partnercast.web.context import Now, Settings
from partnercast.web.dashboard_access import Desk, DeskOf, render
from partnercast.web.dashboard_mail import send_reminder
from partnercast.web.dashboard_views import approvals_page, partner_names, partner_view
from partnercast.web.identity import CsrfProtected

router = APIRouter(include_in_schema=False)
Text = Annotated[str, Form(max_length=4000)]
ON_BEHALF = (decisions.APPROVE, decisions.REQUEST_CHANGES, decisions.DECLINE)


def _back(desk: Desk, path: str) -> Response:
    return RedirectResponse(desk.url(path), status_code=303)


# --- the approvals queue --------------------------------------------------------------


@router.post("/dashboard/{tenant}/approvals/{enrollment_id}/remind")
def remind(
    request: Request,
    desk: DeskOf,
    _: CsrfProtected,
    now: Now,
    settings: Settings,
    enrollment_id: int,
) -> Response:
    with desk.session() as session:
        waiting = _waiting(session, desk, enrollment_id)
        desk.require(TASKS_WRITE)
        if not waiting.contact_email:
            error = desk.gettext("This partner names no point of contact.")
            return approvals_page(
                request, desk, now, status=422, error=error, error_for=enrollment_id
            )
        try:
            send_reminder(request, settings, desk, waiting, now=now)
        except UserError:
            error = desk.gettext("The reminder could not be sent: the mail server did not take it.")
            return approvals_page(
                request, desk, now, status=503, error=error, error_for=enrollment_id
            )
        record_reminder(
            session,
            waiting,
            actor=desk.actor,
            to=waiting.contact_email,
            language=waiting.language,
            now=now,
        )
    return _back(desk, f"/approvals?reminded={enrollment_id}")


@router.post("/dashboard/{tenant}/approvals/{enrollment_id}/decide")
def decide_on_behalf(
    request: Request,
    desk: DeskOf,
    _: CsrfProtected,
    now: Now,
    enrollment_id: int,
    decision: Annotated[str, Form()],
    reason: Text = "",
    shown: Annotated[str, Form(max_length=64)] = "",
    touch: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """The whole campaign, or the one touch named by ``touch`` (approved: it goes out;
    declined: it is left out for this partner), on the partner's behalf with a reason."""
    with desk.session() as session:
        _waiting(session, desk, enrollment_id)
        desk.require(DECIDE)
        enrollment = session.get(Enrollment, enrollment_id)
        assert enrollment is not None
        if decision not in ON_BEHALF:
            raise HTTPException(422)
        client = decisions.Client(
            address=request.client.host if request.client else "",
            user_agent=request.headers.get("user-agent", "")[:400],
        )
        try:
            decisions.decide(
                session,
                enrollment,
                decision,
                principal=desk.visitor.principal,
                now=now,
                touch_key=touch or None,
                reason=reason,
                client=client,
                shown_fingerprint=shown or None,
            )
        except decisions.NotPermitted:
            raise HTTPException(404) from None
        except UserError as error:
            session.rollback()
            return approvals_page(
                request,
                desk,
                now,
                status=422,
                error=desk.gettext(_refusal(error)),
                error_for=enrollment_id,
            )
    return _back(desk, f"/approvals?decided={enrollment_id}")


def N_(message: str) -> str:
    """Marks a message for the catalogue; :meth:`Desk.gettext` translates it when shown."""
    return message


def _refusal(error: UserError) -> str:
    """What the page says (translated) when ``decide`` refuses."""
    if isinstance(error, decisions.ReasonRequired):
        return N_("Give a reason: the partner sees it.")
    if isinstance(error, decisions.ContentChanged):
        return N_("The content changed since this page was shown: look at it again.")
    if isinstance(error, TransitionRefused):
        return N_("This enrollment's state does not allow that decision any more.")
    return N_("That decision was refused.")


def _waiting(session: Session, desk: Desk, enrollment_id: int) -> Waiting:
    try:
        return waiting_enrollment(session, enrollment_id, desk.covered)
    except NotFound:
        raise HTTPException(404) from None


# --- tasks ------------------------------------------------------------------------------


def _task(session: Session, desk: Desk, task_id: int) -> ConciergeTask:
    # Locked (PostgreSQL) so that two changes to one task (a note and a close) do not lose
    # one another's note: concierge.tasks appends notes by read-modify-write.
    task = session.exec(
        select(ConciergeTask).where(ConciergeTask.id == task_id).with_for_update()
    ).first()
    if task is None or not desk.covers(task.partner_id):
        raise HTTPException(404)
    return task


def _task_answer(
    request: Request, desk: Desk, session: Session, task: ConciergeTask, now: datetime
) -> Response:
    """The task's row (htmx swaps it in), or back to the list (a plain form post)."""
    session.flush()
    if request.headers.get("hx-request") != "true":
        return _back(desk, f"/tasks#task-{task.id}")
    concierges = tasks.list_concierges(session)
    return render(
        request,
        desk,
        "tasks.html",
        block="task_row",
        task=task,
        partners=partner_names(session, {task.partner_id or 0}),
        concierges=concierges,
        owners={c.id: c.name for c in concierges},
        now=now,
    )


@router.post("/dashboard/{tenant}/tasks/{task_id}/assign")
def assign(
    request: Request,
    desk: DeskOf,
    _: CsrfProtected,
    now: Now,
    task_id: int,
    concierge: Annotated[int, Form()],
) -> Response:
    with desk.session() as session:
        task = _task(session, desk, task_id)
        desk.require(TASKS_WRITE)
        owner = session.exec(select(Concierge).where(Concierge.id == concierge)).first()
        if owner is None:
            raise HTTPException(404)
        tasks.assign_task(session, task, owner, now=now)
        return _task_answer(request, desk, session, task, now)


@router.post("/dashboard/{tenant}/tasks/{task_id}/note")
def note(
    request: Request, desk: DeskOf, _: CsrfProtected, now: Now, task_id: int, text: Text = ""
) -> Response:
    with desk.session() as session:
        task = _task(session, desk, task_id)
        desk.require(TASKS_WRITE)
        if text.strip():
            tasks.note_task(session, task, text, author=desk.actor, now=now)
        return _task_answer(request, desk, session, task, now)


@router.post("/dashboard/{tenant}/tasks/{task_id}/close")
def close(
    request: Request,
    desk: DeskOf,
    _: CsrfProtected,
    now: Now,
    task_id: int,
    text: Text = "",
    status: Annotated[str, Form()] = tasks.DONE,
) -> Response:
    with desk.session() as session:
        task = _task(session, desk, task_id)
        desk.require(TASKS_WRITE)
        if task.status in tasks.OPEN_STATUSES:
            if status not in tasks.CLOSED_STATUSES:
                raise HTTPException(422)
            tasks.close_task(session, task, note=text, status=status, author=desk.actor, now=now)
        return _task_answer(request, desk, session, task, now)


# --- capacity ---------------------------------------------------------------------------


@router.post("/dashboard/{tenant}/capacity/moves/{partner_id}")
def apply_move(desk: DeskOf, _: CsrfProtected, now: Now, partner_id: int) -> Response:
    """Apply the balance's move of this partner, as proposed now (a move proposed when the
    page was shown and no longer proposed is not made)."""
    with desk.session() as session:
        desk.partner(session, partner_id)
        desk.require(TASKS_WRITE)
        proposal = capacity.propose_balance(session)
        moves = [move for move in proposal.moves if move.partner_id == partner_id]
        if moves:
            capacity.apply_balance(session, capacity.Proposal(moves=moves), now=now)
    return _back(desk, f"/capacity?moved={partner_id if moves else 0}")


# --- one partner: weekly review, invitation ---------------------------------------------


@router.post("/dashboard/{tenant}/partners/{partner_id}/reviews")
def hold_review(
    desk: DeskOf, _: CsrfProtected, now: Now, partner_id: int, notes: Text = ""
) -> Response:
    with desk.session() as session:
        partner = desk.partner(session, partner_id)
        desk.require(TASKS_WRITE)
        agenda = review.build_agenda(session, partner, now)
        review.hold_review(session, partner, agenda, notes=notes, by=desk.actor, now=now)
    return _back(desk, f"/partners/{partner_id}?held=1#reviews")


@router.post("/dashboard/{tenant}/partners/{partner_id}/invite")
def invite(
    request: Request,
    desk: DeskOf,
    _: CsrfProtected,
    now: Now,
    settings: Settings,
    partner_id: int,
) -> Response:
    """Invite the partner's point of contact to the portal (web/invitations.py: the user,
    the membership, the link, the email in the partner's language)."""
    with desk.session() as session:
        desk.partner(session, partner_id)
        desk.require(INVITE)
    try:
        invitations.invite_partner(
            desk.engine,
            settings,
            tenant_id=desk.tenant_id,
            partner_id=partner_id,
            now=now,
            invited_by=desk.actor,
            smtp=mail.smtp_server(request.app.state.host.config.sections),
        )
    except UserError as error:
        text = (
            N_("This partner names no point of contact.")
            if "no point of contact" in error.message
            else N_("The invitation could not be sent: the mail server did not take it.")
        )
        return partner_view(request, desk, now, partner_id, error=desk.gettext(text), status=422)
    return _back(desk, f"/partners/{partner_id}?invited=1#people")
