"""Cycles and the queue: ``GET /cycles`` (filter ``campaign_id``), ``POST /cycles``
(start a campaign's next cycle and plan its dispatches, as ``partnercast cycle start``),
``GET /dispatches`` (the queue and each dispatch's status; filters ``cycle_id``,
``partner_id``, ``state``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session, col, func, select

from partnercast.campaigns.cycles import start_cycle
from partnercast.campaigns.models import Campaign, Cycle
from partnercast.core.bounds import check_instant
from partnercast.core.errors import UserError
from partnercast.core.models import Dispatch
from partnercast.core.tenancy import tenant_session
from partnercast.tenants.access import CAMPAIGNS_WRITE
from partnercast.web.api.auth import Authenticated
from partnercast.web.api.common import ERRORS, MAX_ID, Page
from partnercast.web.api.conventions import (
    Cursor,
    IdempotencyKeyHeader,
    Limit,
    after_id,
    fingerprint,
    json_response,
    once,
    page,
)
from partnercast.web.problems import Problem

router = APIRouter(tags=["cycles"], responses=ERRORS)
QueryId = Annotated[int | None, Query(ge=1, le=MAX_ID)]


class CycleOut(BaseModel):
    id: int
    campaign_id: int
    version_id: int
    number: int
    starts_at: datetime
    ends_at: datetime
    state: str
    created_at: datetime


class CycleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    campaign_id: Annotated[int, Field(ge=1, le=MAX_ID)]
    starts_at: datetime | None = Field(default=None, description="Default: now.")


class Started(CycleOut):
    dispatches_planned: int


class DispatchOut(BaseModel):
    id: int
    cycle_id: int
    enrollment_id: int
    partner_id: int
    touch_id: int
    channel: str
    state: str
    scheduled_at: datetime
    held_for: str
    attempts: int
    last_error: str
    sent_count: int
    suppressed_count: int
    failed_count: int
    finished_at: datetime | None


@router.get("/cycles", response_model=Page[CycleOut], summary="List cycles")
def list_cycles(
    caller: Authenticated,
    request: Request,
    limit: Limit = 50,
    cursor: Cursor = None,
    campaign_id: QueryId = None,
) -> Response:
    start = after_id(caller, request, cursor)
    with tenant_session(caller.engine, caller.tenant_id) as session:
        query = select(Cycle).where(col(Cycle.id) > start)
        if campaign_id is not None:
            query = query.where(Cycle.campaign_id == campaign_id)
        rows = session.exec(query.order_by(col(Cycle.id)).limit(limit + 1)).all()
    items = [CycleOut.model_validate(row, from_attributes=True) for row in rows]
    return json_response(200, page(caller, request, items, [i.id for i in items], limit))


@router.post("/cycles", response_model=Started, status_code=201, summary="Start a cycle")
def post_cycle(
    caller: Authenticated,
    request: Request,
    body: CycleIn,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    caller.require(CAMPAIGNS_WRITE)

    def work(session: Session) -> Response:
        if caller.partners(session, CAMPAIGNS_WRITE) is not None:
            raise Problem(403, "a cycle reaches every partner: staff tokens that see them all")
        campaign = session.exec(select(Campaign).where(Campaign.id == body.campaign_id)).first()
        if campaign is None:
            raise Problem(404, f"no campaign {body.campaign_id}")
        try:
            starts = check_instant(body.starts_at or caller.now, where="body.starts_at")
            cycle = start_cycle(session, campaign, starts, now=caller.now)
        except UserError as error:
            raise Problem(422, str(error), errors=[("body.starts_at", error.message)]) from None
        planned = session.exec(
            select(func.count()).select_from(Dispatch).where(Dispatch.cycle_id == cycle.id)
        ).one()
        started = Started(
            **CycleOut.model_validate(cycle, from_attributes=True).model_dump(),
            dispatches_planned=planned,
        )
        return json_response(201, started)

    return once(caller, idempotency_key, fingerprint(request, body), work)


@router.get("/dispatches", response_model=Page[DispatchOut], summary="The queue: dispatches")
def list_dispatches(
    caller: Authenticated,
    request: Request,
    limit: Limit = 50,
    cursor: Cursor = None,
    cycle_id: QueryId = None,
    partner_id: QueryId = None,
    state: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    start = after_id(caller, request, cursor)
    with tenant_session(caller.engine, caller.tenant_id) as session:
        query = select(Dispatch).where(col(Dispatch.id) > start)
        visible = caller.partners(session)
        if visible is not None:
            query = query.where(col(Dispatch.partner_id).in_(visible))
        if cycle_id is not None:
            query = query.where(Dispatch.cycle_id == cycle_id)
        if partner_id is not None:
            query = query.where(Dispatch.partner_id == partner_id)
        if state is not None:
            query = query.where(Dispatch.state == state)
        rows = session.exec(query.order_by(col(Dispatch.id)).limit(limit + 1)).all()
    items = [DispatchOut.model_validate(row, from_attributes=True) for row in rows]
    return json_response(200, page(caller, request, items, [i.id for i in items], limit))
