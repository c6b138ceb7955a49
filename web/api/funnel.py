"""The funnel over HTTP: leads and their stages, spend, metrics and the contender score.

* ``GET /leads`` (filters ``partner_id``, ``stage``, ``campaign_id``), ``GET /leads/{id}``;
* ``POST /leads``: lead records as the CRM's signed webhook takes them (``{"leads":
  [{"partner": "P1", "email": ..., "stage": "sql", "deal_value": ...}]}``), applied by
  funnel/crm_import.apply_records, the same code: created, updated, unchanged and each
  rejected record with its index and reason (422 when every one was rejected). The
  signed webhook (``/crm/<tenant>/leads``) keeps working beside it;
* ``GET /spend``, ``POST /spend``: investment (MDF) in a partner's campaign;
* ``GET /metrics?by=partner|campaign|segment|cycle|total``: the funnel and ROI;
* ``GET /scores``: the contender score per partner, each component explained.

A partner token sees its own partner's figures only (and its score card as the partner
may read it); a concierge token covering some partners asks about one of them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session, col, select

from partnercast.campaigns.models import Campaign
from partnercast.core.errors import UserError
from partnercast.core.tenancy import tenant_session
from partnercast.funnel.crm_import import apply_records
from partnercast.funnel.leads import Lead
from partnercast.funnel.metrics import funnel
from partnercast.funnel.models import LeadStage, Spend
from partnercast.funnel.score import score_partners
from partnercast.funnel.spend import add_spend
from partnercast.tenants.access import FUNNEL_WRITE
from partnercast.tenants.models import Partner
from partnercast.web.api.auth import Authenticated, Caller
from partnercast.web.api.common import ERRORS, MAX_ID, Id, Page
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
from partnercast.web.api.partners import visible_partner
from partnercast.web.problems import Problem

router = APIRouter(tags=["funnel"], responses=ERRORS)
QueryId = Annotated[int | None, Query(ge=1, le=MAX_ID)]


class LeadOut(BaseModel):
    id: int
    partner_id: int
    campaign_id: int | None
    cycle_id: int | None
    email: str
    name: str
    company: str
    stage: str
    source: str
    crm_id: str | None
    consent: bool
    locale: str
    created_at: datetime
    stage_changed_at: datetime


class StageOut(BaseModel):
    stage: str
    value: float
    currency: str
    occurred_at: datetime
    source: str


class LeadDetail(LeadOut):
    stages: list[StageOut] = Field(description="Every stage reached, in order, with its value.")


class LeadRecords(BaseModel):
    model_config = ConfigDict(extra="forbid")

    leads: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=1000,
        description="Records as the CRM webhook takes them: partner, stage, and lead_id, "
        "crm_id, email, name, campaign, deal_value, currency, occurred_at, utm_*.",
    )


class RejectedRecord(BaseModel):
    index: int
    reason: str


class LeadReport(BaseModel):
    created: int
    updated: int
    unchanged: int
    rejected: list[RejectedRecord]


class SpendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    partner_id: Annotated[int, Field(ge=1, le=MAX_ID)]
    campaign_id: Annotated[int, Field(ge=1, le=MAX_ID)]
    amount: float = Field(gt=0, le=1e12)
    kind: str = Field(default="mdf", max_length=20)
    currency: str = Field(default="", max_length=3)
    note: str = Field(default="", max_length=500)


class SpendOut(BaseModel):
    id: int
    partner_id: int
    campaign_id: int
    amount: float
    kind: str
    currency: str
    note: str
    created_at: datetime


class MetricsRow(BaseModel):
    key: str
    label: str
    counts: dict[str, int]
    rates: dict[str, float | None]
    pipeline: float
    won_value: float
    spend: float | None
    roi_pipeline: float | None
    roi_won: float | None


class ComponentOut(BaseModel):
    name: str
    weight: float
    points: float
    detail: str
    advice: str


class ScoreOut(BaseModel):
    partner_id: int
    external_id: str
    name: str
    score: float
    weakest: str
    components: list[ComponentOut]


def _visible_filter(session: Session, caller: Caller, query: Any, column: Any) -> Any:
    visible = caller.partners(session)
    return query if visible is None else query.where(col(column).in_(visible))


def _funnel_writer(session: Session, caller: Caller) -> None:
    caller.require(FUNNEL_WRITE)
    if caller.partners(session, FUNNEL_WRITE) is not None:
        raise Problem(403, "only a token that sees every partner may record leads and spend")


@router.get("/leads", response_model=Page[LeadOut], summary="List leads")
def list_leads(
    caller: Authenticated,
    request: Request,
    limit: Limit = 50,
    cursor: Cursor = None,
    partner_id: QueryId = None,
    campaign_id: QueryId = None,
    stage: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    start = after_id(caller, request, cursor)
    with tenant_session(caller.engine, caller.tenant_id) as session:
        query = _visible_filter(
            session, caller, select(Lead).where(col(Lead.id) > start), Lead.partner_id
        )
        if partner_id is not None:
            query = query.where(Lead.partner_id == partner_id)
        if campaign_id is not None:
            query = query.where(Lead.campaign_id == campaign_id)
        if stage is not None:
            query = query.where(Lead.stage == stage)
        rows = session.exec(query.order_by(col(Lead.id)).limit(limit + 1)).all()
    items = [LeadOut.model_validate(row, from_attributes=True) for row in rows]
    return json_response(200, page(caller, request, items, [i.id for i in items], limit))


@router.get("/leads/{lead_id}", response_model=LeadDetail, summary="One lead and its stages")
def get_lead(caller: Authenticated, lead_id: Id) -> Response:
    with tenant_session(caller.engine, caller.tenant_id) as session:
        lead = session.exec(select(Lead).where(Lead.id == lead_id)).first()
        if lead is None or not caller.sees_partner(session, lead.partner_id):
            raise Problem(404, f"no lead {lead_id}")
        stages = session.exec(
            select(LeadStage)
            .where(LeadStage.lead_id == lead_id)
            .order_by(col(LeadStage.occurred_at), col(LeadStage.id))
        ).all()
    detail = LeadDetail(
        **LeadOut.model_validate(lead, from_attributes=True).model_dump(),
        stages=[StageOut.model_validate(stage, from_attributes=True) for stage in stages],
    )
    return json_response(200, detail)


@router.post(
    "/leads",
    response_model=LeadReport,
    summary="Create leads and move their stages (as the CRM webhook does)",
)
def post_leads(
    caller: Authenticated,
    request: Request,
    body: LeadRecords,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    caller.require(FUNNEL_WRITE)

    def work(session: Session) -> Response:
        _funnel_writer(session, caller)
        report = apply_records(session, body.leads, now=caller.now)
        answer = LeadReport(
            created=report.created,
            updated=report.updated,
            unchanged=report.unchanged,
            rejected=[RejectedRecord(index=r.line, reason=r.reason) for r in report.rejected],
        )
        if report.kept == 0:
            raise Problem(
                422,
                f"every record was rejected: {report.rejected[0]}",
                errors=[(f"body.leads.{r.line}", r.reason) for r in report.rejected],
            )
        return json_response(200, answer)

    return once(caller, idempotency_key, fingerprint(request, body), work)


@router.get("/spend", response_model=Page[SpendOut], summary="List spend")
def list_spend(
    caller: Authenticated,
    request: Request,
    limit: Limit = 50,
    cursor: Cursor = None,
    partner_id: QueryId = None,
    campaign_id: QueryId = None,
) -> Response:
    start = after_id(caller, request, cursor)
    with tenant_session(caller.engine, caller.tenant_id) as session:
        query = _visible_filter(
            session, caller, select(Spend).where(col(Spend.id) > start), Spend.partner_id
        )
        if partner_id is not None:
            query = query.where(Spend.partner_id == partner_id)
        if campaign_id is not None:
            query = query.where(Spend.campaign_id == campaign_id)
        rows = session.exec(query.order_by(col(Spend.id)).limit(limit + 1)).all()
    items = [SpendOut.model_validate(row, from_attributes=True) for row in rows]
    return json_response(200, page(caller, request, items, [i.id for i in items], limit))


@router.post("/spend", response_model=SpendOut, status_code=201, summary="Record spend")
def post_spend(
    caller: Authenticated,
    request: Request,
    body: SpendIn,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    caller.require(FUNNEL_WRITE)

    def work(session: Session) -> Response:
        _funnel_writer(session, caller)
        partner = visible_partner(session, caller, body.partner_id)
        campaign = session.exec(select(Campaign).where(Campaign.id == body.campaign_id)).first()
        if campaign is None:
            raise Problem(404, f"no campaign {body.campaign_id}")
        try:
            row = add_spend(
                session,
                partner.external_id,
                campaign.key,
                body.amount,
                kind=body.kind,
                currency=body.currency,
                note=body.note,
                now=caller.now,
            )
        except UserError as error:
            where = "body.kind" if error.where == "--kind" else "body.amount"
            raise Problem(
                422, f"{where}: {error.message}", errors=[(where, error.message)]
            ) from None
        return json_response(201, SpendOut.model_validate(row, from_attributes=True))

    return once(caller, idempotency_key, fingerprint(request, body), work)


def _one_partner(session: Session, caller: Caller, partner_id: int | None) -> int | None:
    """The partner a scoped token must name (its own, for a partner token)."""
    if caller.partners(session) is None:
        if partner_id is not None:
            visible_partner(session, caller, partner_id)
        return partner_id
    if partner_id is None and caller.partner_id is not None:
        return caller.partner_id
    if partner_id is None:
        raise Problem(
            422,
            "query.partner_id: required for a token that does not see every partner",
            errors=[("query.partner_id", "required")],
        )
    visible_partner(session, caller, partner_id)
    return partner_id


@router.get("/metrics", response_model=list[MetricsRow], summary="The funnel and ROI")
def metrics(
    caller: Authenticated,
    by: Literal["partner", "campaign", "segment", "cycle", "total"] = "partner",
    partner_id: QueryId = None,
    campaign_id: QueryId = None,
) -> Response:
    with tenant_session(caller.engine, caller.tenant_id) as session:
        partner_id = _one_partner(session, caller, partner_id)
        rows = funnel(session, by=by, campaign_id=campaign_id, partner_id=partner_id)
    return json_response(
        200,
        [
            MetricsRow(
                key=row.key,
                label=row.label,
                counts=row.counts,
                rates=row.rates,
                pipeline=row.pipeline,
                won_value=row.won_value,
                spend=row.spend,
                roi_pipeline=row.roi_pipeline,
                roi_won=row.roi_won,
            )
            for row in rows
        ],
    )


@router.get("/scores", response_model=list[ScoreOut], summary="The contender score")
def scores(caller: Authenticated, partner_id: QueryId = None) -> Response:
    with tenant_session(caller.engine, caller.tenant_id) as session:
        partner_id = _one_partner(session, caller, partner_id)
        external_id = None
        if partner_id is not None:
            partner = session.exec(select(Partner).where(Partner.id == partner_id)).one()
            external_id = partner.external_id
        cards = score_partners(session, external_id)
    own = caller.partner_id is not None
    answer = []
    for card in cards:
        shown = card.own_view() if own else card
        answer.append(
            ScoreOut(
                partner_id=shown.partner_id,
                external_id=shown.external_id,
                name=shown.name,
                score=shown.score,
                weakest=shown.weakest.name,
                components=[
                    ComponentOut(
                        name=c.name,
                        weight=c.weight,
                        points=c.points,
                        detail=c.detail,
                        advice=c.advice,
                    )
                    for c in shown.components
                ],
            )
        )
    return json_response(200, answer)
