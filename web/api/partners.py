"""``/api/v1/partners``: the tenant's partners (a partner token sees its own only).

* ``GET /partners``: filters ``external_id``, ``status``, ``tier``, ``region``;
* ``POST /partners``: create or update by ``external_id`` (as a ``partners import`` row:
  201 created, 200 updated or unchanged); only a token that sees every partner may
  create one;
* ``GET /partners/{id}`` (with its ETag), ``PATCH /partners/{id}`` (If-Match required).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session, col, select

from partnercast.tenants.access import PARTNERS_WRITE, READ
from partnercast.tenants.models import Partner
from partnercast.web.api.auth import Authenticated, Caller
from partnercast.web.api.common import ERRORS, Id, Page
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
from partnercast.web.api.rows import write_partner
from partnercast.web.problems import Problem

router = APIRouter(prefix="/partners", tags=["partners"], responses=ERRORS)

Text100 = Annotated[str, Field(min_length=1, max_length=100)]


class PartnerOut(BaseModel):
    id: int
    external_id: str
    name: str
    tier: str
    region: str
    languages: list[str]
    tags: list[str]
    score: float
    time_zone: str
    status: str
    legal_name: str
    postal_address: str
    logo_url: str
    primary_color: str
    secondary_color: str
    signature: str
    sender_name: str
    sender_email: str
    contact_name: str
    contact_email: str
    created_at: datetime
    updated_at: datetime


class PartnerFields(BaseModel):
    """The fields of a partner an import row may set; a field left out stays as it is."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    legal_name: str | None = Field(default=None, min_length=1, max_length=200)
    postal_address: str | None = Field(default=None, min_length=1, max_length=400)
    tier: str | None = Field(default=None, max_length=40)
    region: str | None = Field(default=None, max_length=40)
    languages: list[Annotated[str, Field(max_length=16)]] | None = Field(
        default=None, max_length=50
    )
    tags: list[Annotated[str, Field(max_length=100)]] | None = Field(default=None, max_length=50)
    score: float | None = Field(default=None, ge=0, le=100)
    time_zone: str | None = Field(default=None, max_length=64)
    status: str | None = Field(default=None, max_length=20)
    logo_url: str | None = Field(default=None, max_length=500)
    primary_color: str | None = Field(default=None, max_length=16)
    secondary_color: str | None = Field(default=None, max_length=16)
    signature: str | None = Field(default=None, max_length=1000)
    sender_name: str | None = Field(default=None, max_length=200)
    sender_email: str | None = Field(default=None, max_length=254)
    contact_name: str | None = Field(default=None, max_length=200)
    contact_email: str | None = Field(default=None, max_length=254)


class PartnerIn(PartnerFields):
    """A partner to create or update, matched by ``external_id``."""

    external_id: Text100
    name: str = Field(min_length=1, max_length=200)
    legal_name: str = Field(min_length=1, max_length=200)
    postal_address: str = Field(min_length=1, max_length=400)


def out(partner: Partner) -> PartnerOut:
    return PartnerOut.model_validate(partner, from_attributes=True)


def visible_partner(
    session: Session, caller: Caller, partner_id: int, action: str = READ
) -> Partner:
    """The tenant's partner ``partner_id`` if this token may ``action`` for it; 404 for
    one it may not see (another tenant's, another partner's) as for one that is not."""
    query = select(Partner).where(Partner.id == partner_id)
    if action != READ:  # a change reads, checks If-Match and writes under the row's lock
        query = query.with_for_update()
    partner = session.exec(query).first()
    if partner is None or not caller.sees_partner(session, partner_id):
        raise Problem(404, f"no partner {partner_id}")
    if action != READ:
        caller.require(action)
        if not caller.sees_partner(session, partner_id, action):
            raise Problem(403, f"this token may not change partner {partner_id}")
    return partner


@router.get("", response_model=Page[PartnerOut], summary="List partners")
def list_partners(
    caller: Authenticated,
    request: Request,
    limit: Limit = 50,
    cursor: Cursor = None,
    external_id: Annotated[str | None, Query(max_length=100)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    tier: Annotated[str | None, Query(max_length=40)] = None,
    region: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    start = after_id(caller, request, cursor)
    with _read(caller) as session:
        query = select(Partner).where(col(Partner.id) > start)
        visible = caller.partners(session)
        if visible is not None:
            query = query.where(col(Partner.id).in_(visible))
        for column, value in (
            (Partner.external_id, external_id),
            (Partner.status, status),
            (Partner.tier, tier),
            (Partner.region, region),
        ):
            if value is not None:
                query = query.where(column == value)
        rows = session.exec(query.order_by(col(Partner.id)).limit(limit + 1)).all()
    items = [out(row) for row in rows]
    return json_response(200, page(caller, request, items, [i.id for i in items], limit))


@router.post(
    "",
    response_model=PartnerOut,
    status_code=201,
    summary="Create or update a partner (by external_id)",
    responses={200: {"model": PartnerOut, "description": "Updated or unchanged"}},
)
def upsert_partner(
    caller: Authenticated,
    request: Request,
    body: PartnerIn,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    caller.require(PARTNERS_WRITE)

    def work(session: Session) -> Response:
        existing = session.exec(
            select(Partner).where(Partner.external_id == body.external_id)
        ).first()
        if existing is None:
            if caller.partners(session, PARTNERS_WRITE) is not None:
                raise Problem(403, "only a token that sees every partner may add one")
        else:
            assert existing.id is not None
            visible_partner(session, caller, existing.id, PARTNERS_WRITE)
        fields = {"external_id": body.external_id, **body.model_dump(exclude_none=True)}
        outcome = write_partner(session, fields, now=caller.now)
        partner = session.exec(select(Partner).where(Partner.external_id == body.external_id)).one()
        status = 201 if outcome == "created" else 200
        return with_etag(status, out(partner), Location=f"{_base(request)}/{partner.id}")

    return once(caller, idempotency_key, fingerprint(request, body), work)


@router.get("/{partner_id}", response_model=PartnerOut, summary="One partner")
def get_partner(caller: Authenticated, partner_id: Id) -> Response:
    with _read(caller) as session:
        partner = visible_partner(session, caller, partner_id)
    return with_etag(200, out(partner))


@router.patch(
    "/{partner_id}",
    response_model=PartnerOut,
    summary="Change a partner (If-Match required)",
    responses={412: ERRORS[422] | {"description": "Changed since read"}, 428: ERRORS[422]},
)
def patch_partner(
    caller: Authenticated,
    partner_id: Id,
    body: PartnerFields,
    if_match: IfMatch = None,
) -> Response:
    caller.require(PARTNERS_WRITE)
    with _write(caller) as session:
        partner = visible_partner(session, caller, partner_id, PARTNERS_WRITE)
        check_if_match(if_match, etag_of(out(partner)))
        fields: dict[str, Any] = {
            "external_id": partner.external_id,
            "name": partner.name,
            "legal_name": partner.legal_name,
            "postal_address": partner.postal_address,
            **body.model_dump(exclude_unset=True, exclude_none=True),
        }
        write_partner(session, fields, now=caller.now)
        session.refresh(partner)
        return with_etag(200, out(partner))


def _base(request: Request) -> str:
    return str(request.url.replace(query="")).rstrip("/")


def _read(caller: Caller) -> Any:
    from partnercast.core.tenancy import tenant_session

    return tenant_session(caller.engine, caller.tenant_id)


_write = _read
