"""``/api/v1/tenant``: the token's own tenant (a token is always one tenant's)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel
from sqlmodel import select

from partnercast.core.tenancy import plain_session
from partnercast.tenants.access import ROLE_TITLES
from partnercast.tenants.models import Tenant
from partnercast.web.api.auth import Authenticated
from partnercast.web.api.common import ERRORS
from partnercast.web.api.conventions import json_response
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


@router.get("/tenant", response_model=TenantOut, summary="The token's tenant, and the token")
def tenant(caller: Authenticated) -> Response:
    with plain_session(caller.engine) as session:
        row = session.exec(select(Tenant).where(Tenant.id == caller.tenant_id)).first()
    if row is None or row.id is None:
        raise Problem(404, "this token's tenant is gone")
    return json_response(
        200,
        TenantOut(
            id=row.id,
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
        ),
    )
