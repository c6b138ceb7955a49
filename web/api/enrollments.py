"""``/api/v1/enrollments``: partners taking part in campaigns: customise, submit, decide,
preview.

* ``GET /enrollments``: filters ``campaign_id``, ``partner_id``, ``state``;
* ``GET /enrollments/{id}``: with its ETag and ``fingerprint`` (what an approval
  approves: the pinned version and the customisation);
* ``PATCH /enrollments/{id}``: change editable fields (``customization``; If-Match
  required), checked as ``partnercast customise`` checks them (422 names the field);
* ``POST /enrollments/{id}/submissions``: submit for the partner's approval;
* ``POST /enrollments/{id}/decisions``: approve, decline, request changes (the whole
  campaign or one ``touch``), or auto-approval on/off, through campaigns/decisions.py:
  a partner token decides as the partner; any other token decides on the partner's
  behalf and must give a ``reason`` (recorded, and the partner sees it). Send
  ``fingerprint`` (from GET) to refuse a decision on content that changed since (412);
  a state that does not allow the decision is 409;
* ``GET /enrollments/{id}/preview?touch=KEY``: one touch rendered for the partner, as
  ``partnercast preview`` renders it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session, col, select

from partnercast.campaigns import approval
from partnercast.campaigns.decisions import Client, ContentChanged, ReasonRequired, decide
from partnercast.campaigns.enrollment import customise
from partnercast.campaigns.models import ApprovalRecord, Campaign, Enrollment
from partnercast.campaigns.preview import render_preview
from partnercast.core.errors import UserError
from partnercast.core.tenancy import tenant_session
from partnercast.tenants.access import CUSTOMISE, DECIDE, READ
from partnercast.tenants.models import Partner
from partnercast.web.api.auth import Authenticated, Caller
from partnercast.web.api.common import ERRORS, MAX_ID, Id, Page
from partnercast.web.api.conventions import (
    Cursor,
    IdempotencyKeyHeader,
    IfMatch,
    Limit,
    after_id,
    check_if_match,
    etag_of,
    fingerprint,
    json_response,
    once,
    page,
    with_etag,
)
from partnercast.web.problems import Problem

router = APIRouter(prefix="/enrollments", tags=["enrollments"], responses=ERRORS)


class EnrollmentOut(BaseModel):
    id: int
    campaign_id: int
    partner_id: int
    version_id: int
    segment_key: str
    state: str
    auto_approve: bool
    customization: dict[str, Any]
    declined_touches: list[str]
    note: str
    state_changed_at: datetime
    approved_at: datetime | None
    fingerprint: str = Field(description="What an approval approves (send it with a decision).")


class CustomisationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customization: dict[str, Any] = Field(
        description="Editable field -> value (a text field: a string, or locale -> string)."
    )
    locale: str | None = Field(
        default=None, max_length=16, description="Set text values for this locale only."
    )


class SubmissionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(default="", max_length=2000)


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "decline", "request_changes", "auto_approve", "auto_approve_off"]
    reason: str = Field(
        default="",
        max_length=2000,
        description="Why: required when agency staff decide on the partner's behalf.",
    )
    note: str = Field(default="", max_length=2000)
    touch: str | None = Field(default=None, max_length=64, description="Decide one touch only.")
    fingerprint: str | None = Field(
        default=None, max_length=64, description="The enrollment's fingerprint when shown."
    )


class DecisionOut(BaseModel):
    id: int
    enrollment_id: int
    decision: str
    touch: str | None
    state_after: str
    on_behalf: bool
    reason: str
    decided_by: str
    decided_at: datetime
    enrollment: EnrollmentOut


class PreviewOut(BaseModel):
    touch: str
    locale: str
    channel: str
    subject: str
    html: str
    text: str
    problems: list[str]


def out(enrollment: Enrollment) -> EnrollmentOut:
    return EnrollmentOut(
        id=enrollment.id or 0,
        campaign_id=enrollment.campaign_id,
        partner_id=enrollment.partner_id,
        version_id=enrollment.version_id,
        segment_key=enrollment.segment_key,
        state=enrollment.state,
        auto_approve=enrollment.auto_approve,
        customization=enrollment.customization,
        declined_touches=list(enrollment.declined_touches or []),
        note=enrollment.note,
        state_changed_at=enrollment.state_changed_at,
        approved_at=enrollment.approved_at,
        fingerprint=approval.fingerprint(enrollment),
    )


def visible_enrollment(
    session: Session, caller: Caller, enrollment_id: int, action: str = READ
) -> Enrollment:
    query = select(Enrollment).where(Enrollment.id == enrollment_id)
    if action != READ:
        query = query.with_for_update()
    found = session.exec(query).first()
    if found is None or not caller.sees_partner(session, found.partner_id):
        raise Problem(404, f"no enrollment {enrollment_id}")
    if action != READ:
        caller.require(action)
        if not caller.sees_partner(session, found.partner_id, action):
            raise Problem(403, f"this token may not {action} enrollment {enrollment_id}")
    return found


@router.get("", response_model=Page[EnrollmentOut], summary="List enrollments")
def list_enrollments(
    caller: Authenticated,
    request: Request,
    limit: Limit = 50,
    cursor: Cursor = None,
    campaign_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    partner_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    state: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    start = after_id(caller, request, cursor)
    with tenant_session(caller.engine, caller.tenant_id) as session:
        query = select(Enrollment).where(col(Enrollment.id) > start)
        visible = caller.partners(session)
        if visible is not None:
            query = query.where(col(Enrollment.partner_id).in_(visible))
        if campaign_id is not None:
            query = query.where(Enrollment.campaign_id == campaign_id)
        if partner_id is not None:
            query = query.where(Enrollment.partner_id == partner_id)
        if state is not None:
            query = query.where(Enrollment.state == state)
        rows = session.exec(query.order_by(col(Enrollment.id)).limit(limit + 1)).all()
        items = [out(row) for row in rows]
    return json_response(200, page(caller, request, items, [i.id for i in items], limit))


@router.get("/{enrollment_id}", response_model=EnrollmentOut, summary="One enrollment")
def get_enrollment(caller: Authenticated, enrollment_id: Id) -> Response:
    with tenant_session(caller.engine, caller.tenant_id) as session:
        found = visible_enrollment(session, caller, enrollment_id)
        return with_etag(200, out(found))


@router.patch(
    "/{enrollment_id}",
    response_model=EnrollmentOut,
    summary="Customise (If-Match required): voids an approval",
    responses={412: ERRORS[422], 428: ERRORS[422]},
)
def customise_enrollment(
    caller: Authenticated,
    enrollment_id: Id,
    body: CustomisationIn,
    if_match: IfMatch = None,
) -> Response:
    caller.require(CUSTOMISE)
    with tenant_session(caller.engine, caller.tenant_id) as session:
        found = visible_enrollment(session, caller, enrollment_id, CUSTOMISE)
        check_if_match(if_match, etag_of(out(found)))
        values = dict(body.customization)
        if body.locale:
            for name, value in list(values.items()):
                if isinstance(value, str):
                    current = found.customization.get(name)
                    merged = dict(current) if isinstance(current, dict) else {}
                    merged[body.locale] = value
                    values[name] = merged
        try:
            customise(session, found, values, actor=caller.principal.label, now=caller.now)
        except UserError as error:
            raise _refused(error) from None
        return with_etag(200, out(found))


@router.post(
    "/{enrollment_id}/submissions",
    response_model=EnrollmentOut,
    summary="Submit for the partner's approval",
    responses={409: ERRORS[422]},
)
def submit(
    caller: Authenticated,
    request: Request,
    enrollment_id: Id,
    body: SubmissionIn,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    caller.require(CUSTOMISE)

    def work(session: Session) -> Response:
        found = visible_enrollment(session, caller, enrollment_id, CUSTOMISE)
        try:
            approval.transition(
                session,
                found,
                "submit",
                actor=caller.principal.label,
                note=body.note,
                now=caller.now,
            )
        except UserError as error:
            raise _refused(error) from None
        return with_etag(200, out(found))

    return once(caller, idempotency_key, fingerprint(request, body), work)


@router.post(
    "/{enrollment_id}/decisions",
    response_model=DecisionOut,
    status_code=201,
    summary="Approve, decline or request changes (on the partner's behalf: with a reason)",
    responses={409: ERRORS[422], 412: ERRORS[422]},
)
def decide_enrollment(
    caller: Authenticated,
    request: Request,
    enrollment_id: Id,
    body: DecisionIn,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    caller.require(DECIDE)
    client = Client(
        address=request.client.host if request.client else "",
        user_agent=request.headers.get("user-agent", "")[:400],
    )

    def work(session: Session) -> Response:
        found = visible_enrollment(session, caller, enrollment_id, DECIDE)
        try:
            record = decide(
                session,
                found,
                body.decision,
                principal=caller.principal,
                now=caller.now,
                touch_key=body.touch,
                reason=body.reason,
                note=body.note,
                client=client,
                shown_fingerprint=body.fingerprint,
            )
        except ReasonRequired as error:
            raise Problem(
                422, f"body.reason: {error}", errors=[("body.reason", str(error))]
            ) from None
        except ContentChanged as error:
            raise Problem(412, str(error), kind="content-changed") from None
        except UserError as error:
            raise _refused(error) from None
        return json_response(201, _decision_out(record, found))

    return once(caller, idempotency_key, fingerprint(request, body), work)


def _decision_out(record: ApprovalRecord, enrollment: Enrollment) -> DecisionOut:
    return DecisionOut(
        id=record.id or 0,
        enrollment_id=record.enrollment_id,
        decision=record.decision,
        touch=record.touch_key,
        state_after=record.state_after,
        on_behalf=record.on_behalf,
        reason=record.reason,
        decided_by=record.actor_label,
        decided_at=record.decided_at,
        enrollment=out(enrollment),
    )


def _refused(error: UserError) -> Problem:
    if isinstance(error, approval.TransitionRefused):
        return Problem(409, str(error), kind="state-conflict")
    where = f"body.{error.where}" if error.where else "body"
    return Problem(422, str(error), kind="invalid", errors=[(where, error.message)])


@router.get(
    "/{enrollment_id}/preview",
    response_model=PreviewOut,
    summary="One touch rendered for the partner, as a contact would see it",
)
def preview(
    caller: Authenticated,
    enrollment_id: Id,
    touch: Annotated[str, Query(min_length=1, max_length=64, description="The touch's key.")],
    locale: Annotated[str | None, Query(max_length=16)] = None,
) -> Response:
    with tenant_session(caller.engine, caller.tenant_id) as session:
        found = visible_enrollment(session, caller, enrollment_id)
        campaign = session.exec(select(Campaign).where(Campaign.id == found.campaign_id)).one()
        partner = session.exec(select(Partner).where(Partner.id == found.partner_id)).one()
        try:
            result = render_preview(
                session, caller.settings, campaign.key, partner.external_id, touch, locale
            )
        except UserError as error:
            raise Problem(422, str(error), errors=[("query.touch", error.message)]) from None
    return json_response(
        200,
        PreviewOut(
            touch=touch,
            locale=result.locale,
            channel=result.channel_title,
            subject=result.subject,
            html=result.html,
            text=result.text,
            problems=list(result.problems),
        ),
    )
