"""``/api/v1/tenant``: the token's own tenant (a token is always one tenant's), and, for
an agency admin's token, its settings (``PATCH``, If-Match required): the delivery
guarantee and the unsubscribe scope, as ``partnercast tenants set``."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict
from sqlmodel import Session, select

from partnercast.core.tenancy import plain_session
from partnercast.tenants.access import ADMIN, ROLE_TITLES
from partnercast.tenants.models import Tenant
from partnercast.web.api.auth import Authenticated, Caller
from partnercast.web.api.common import ERRORS
from partnercast.web.api.conventions import IfMatch, check_if_match, etag_of, with_etag
from partnercast.web.problems import Problem

router = APIRouter(tags=["tenant"], responses=ERRORS)


class TokenOut(BaseModel):
    role: str
    role_title: str
    partner_id: int | None


class TenantOut(BaseModel):
    id: int
    slug: str
    name: str
    default_locale: str
    delivery_guarantee: str
    unsubscribe_scope: str
    created_at: datetime
    token: TokenOut


class TenantSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delivery_guarantee: Literal["at_least_once", "at_most_once"] | None = None
    unsubscribe_scope: Literal["vendor", "partner"] | None = None


def _out(row: Tenant, caller: Caller) -> TenantOut:
    return TenantOut(
        id=row.id or 0,
        slug=row.slug,
        name=row.name,
        default_locale=row.default_locale,
        delivery_guarantee=row.delivery_guarantee,
        unsubscribe_scope=row.unsubscribe_scope,
        created_at=row.created_at,
        token=TokenOut(
            role=caller.role.value,
            role_title=ROLE_TITLES[caller.role],
            partner_id=caller.partner_id,
        ),
    )


def _tenant(session: Session, caller: Caller) -> Tenant:
    row = session.exec(select(Tenant).where(Tenant.id == caller.tenant_id)).first()
    if row is None or row.id is None:
        raise Problem(404, "this token's tenant is gone")
    return row


@router.get("/tenant", response_model=TenantOut, summary="The token's tenant, and the token")
def tenant(caller: Authenticated) -> Response:
    with plain_session(caller.engine) as session:
        return with_etag(200, _out(_tenant(session, caller), caller))


@router.patch(
    "/tenant",
    response_model=TenantOut,
    summary="Change the tenant's settings (agency admin; If-Match required)",
    responses={412: ERRORS[422], 428: ERRORS[422]},
)
def patch_tenant(caller: Authenticated, body: TenantSettings, if_match: IfMatch = None) -> Response:
    caller.require(ADMIN)
    with plain_session(caller.engine) as session:
        row = _tenant(session, caller)
        check_if_match(if_match, etag_of(_out(row, caller)))
        if body.delivery_guarantee is not None:
            row.delivery_guarantee = body.delivery_guarantee
        if body.unsubscribe_scope is not None:
            row.unsubscribe_scope = body.unsubscribe_scope
        session.add(row)
        session.flush()
        return with_etag(200, _out(row, caller))
