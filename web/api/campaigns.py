"""``/api/v1/campaigns``: campaign-as-code over HTTP.

* ``GET /campaigns``, ``GET /campaigns/{id}`` (with its versions);
* ``POST /campaigns/validations``: check an uploaded campaign folder (a .zip or .tar.gz
  of it, multipart ``file``) as ``partnercast campaign validate`` does, rendering every
  touch for a sample partner: its problems, each with file and line, as a 422;
* ``POST /campaigns``: store the uploaded folder as the campaign's next version (as
  ``campaign load``): 201 with the new version, 200 when its content is unchanged.
"""

from __future__ import annotations

import hashlib
import tempfile
from datetime import datetime
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, File, Request, Response, UploadFile
from pydantic import BaseModel
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from partnercast.campaigns.loader import LoadedCampaign, read_campaign
from partnercast.campaigns.models import Campaign, CampaignVersion, Enrollment
from partnercast.campaigns.store import campaign_versions, store_campaign
from partnercast.core.errors import Problems, UserError
from partnercast.core.tenancy import tenant_session
from partnercast.tenants.access import CAMPAIGNS_WRITE
from partnercast.web.api.archive import MAX_ARCHIVE, unpack
from partnercast.web.api.auth import Authenticated, Caller
from partnercast.web.api.common import ERRORS, Id, Page
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

router = APIRouter(prefix="/campaigns", tags=["campaigns"], responses=ERRORS)


class VersionOut(BaseModel):
    id: int
    number: int
    content_hash: str
    cycle_days: int
    touches: list[str]
    locales: list[str]
    created_at: datetime


class CampaignOut(BaseModel):
    id: int
    key: str
    name: str
    latest_version_id: int | None
    created_at: datetime


class CampaignDetail(CampaignOut):
    versions: list[VersionOut]


class Validation(BaseModel):
    key: str
    name: str
    touches: list[str]
    locales: list[str]
    warnings: list[str]


class Stored(BaseModel):
    campaign: CampaignOut
    version: VersionOut
    created: bool
    warnings: list[str]


def campaign_out(campaign: Campaign) -> CampaignOut:
    return CampaignOut.model_validate(campaign, from_attributes=True)


def version_out(version: CampaignVersion) -> VersionOut:
    spec = version.spec or {}
    touches = [
        str(touch.get("key", "")) for touch in spec.get("touches", []) if isinstance(touch, dict)
    ]
    return VersionOut(
        id=version.id or 0,
        number=version.number,
        content_hash=version.content_hash,
        cycle_days=version.cycle_days,
        touches=touches,
        locales=[str(locale) for locale in spec.get("locales", [])],
        created_at=version.created_at,
    )


def _read_upload(content: bytes) -> LoadedCampaign:
    from partnercast.plugins.manager import (
        channel_content_models,
        default_plugins,
        installed_channels,
    )

    with tempfile.TemporaryDirectory(prefix="partnercast-api-") as folder:
        root = unpack(content, FilePath(folder))
        try:
            return read_campaign(
                root,
                installed_channels(),
                channel_content_models(),
                filters=default_plugins().template_filters(),
            )
        except Problems as problems:
            raise Problem(
                422,
                f"{len(problems.problems)} problem(s) in the campaign: {problems.problems[0]}",
                kind="campaign-problems",
                errors=[("file", problem) for problem in problems.problems],
            ) from None
        except UserError as error:
            raise Problem(422, f"file: {error}", errors=[("file", str(error))]) from None


async def _upload(file: UploadFile) -> bytes:
    content = await file.read(MAX_ARCHIVE + 1)
    if len(content) > MAX_ARCHIVE:
        raise Problem(413, f"file: over {MAX_ARCHIVE} bytes")
    return content


def _enrolled_only(session: Session, caller: Caller, query: Any) -> Any:
    """A partner token sees the campaigns its partner is enrolled in, no others."""
    if caller.partner_id is None:
        return query
    enrolled = session.exec(
        select(Enrollment.campaign_id).where(Enrollment.partner_id == caller.partner_id)
    ).all()
    return query.where(col(Campaign.id).in_(list(enrolled)))


def visible_campaign(session: Session, caller: Caller, campaign_id: int) -> Campaign:
    query = _enrolled_only(session, caller, select(Campaign).where(Campaign.id == campaign_id))
    found = session.exec(query).first()
    if not isinstance(found, Campaign):
        raise Problem(404, f"no campaign {campaign_id}")
    return found


@router.get("", response_model=Page[CampaignOut], summary="List campaigns")
def list_campaigns(
    caller: Authenticated, request: Request, limit: Limit = 50, cursor: Cursor = None
) -> Response:
    start = after_id(caller, request, cursor)
    with tenant_session(caller.engine, caller.tenant_id) as session:
        rows = session.exec(
            _enrolled_only(session, caller, select(Campaign))
            .where(col(Campaign.id) > start)
            .order_by(col(Campaign.id))
            .limit(limit + 1)
        ).all()
    items = [campaign_out(row) for row in rows]
    return json_response(200, page(caller, request, items, [i.id for i in items], limit))


@router.get(
    "/{campaign_id}", response_model=CampaignDetail, summary="One campaign and its versions"
)
def get_campaign(caller: Authenticated, campaign_id: Id) -> Response:
    with tenant_session(caller.engine, caller.tenant_id) as session:
        campaign = visible_campaign(session, caller, campaign_id)
        versions = [version_out(v) for v in campaign_versions(session, campaign)]
    detail = CampaignDetail(**campaign_out(campaign).model_dump(), versions=versions)
    return json_response(200, detail)


@router.post(
    "/validations",
    response_model=Validation,
    summary="Check a campaign folder (a .zip or .tar.gz of it), as `campaign validate`",
)
async def validate_campaign(
    caller: Authenticated,
    file: Annotated[UploadFile, File(description="A .zip or .tar.gz of the campaign folder.")],
) -> Response:
    content = await _upload(file)
    loaded = await run_in_threadpool(_read_upload, content)
    spec = loaded.spec
    return json_response(
        200,
        Validation(
            key=spec.key,
            name=spec.name,
            touches=[touch.key for touch in spec.touches],
            locales=list(spec.locales),
            warnings=list(loaded.warnings),
        ),
    )


@router.post(
    "",
    response_model=Stored,
    status_code=201,
    summary="Store a campaign folder as its next version, as `campaign load`",
    responses={200: {"model": Stored, "description": "Unchanged: the latest version"}},
)
async def load_campaign(
    caller: Authenticated,
    request: Request,
    file: Annotated[UploadFile, File(description="A .zip or .tar.gz of the campaign folder.")],
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    caller.require(CAMPAIGNS_WRITE)
    content = await _upload(file)
    loaded = await run_in_threadpool(_read_upload, content)

    def work(session: Session) -> Response:
        from partnercast.campaigns.send_windows import wave_region_warnings

        try:
            result = store_campaign(session, loaded, now=caller.now)
        except UserError as error:
            raise Problem(422, f"file: {error}", errors=[("file", str(error))]) from None
        warnings = [*loaded.warnings, *wave_region_warnings(session, loaded.spec)]
        stored = Stored(
            campaign=campaign_out(result.campaign),
            version=version_out(result.version),
            created=result.created,
            warnings=warnings,
        )
        return json_response(201 if result.created else 200, stored)

    digest = hashlib.sha256(content).hexdigest()
    answer: Response = await run_in_threadpool(
        once, caller, idempotency_key, fingerprint(request, {"file": digest}), work
    )
    return answer


class EnrollOut(BaseModel):
    invited: list[str]
    already: list[str]
    not_targeted: int
    not_ready: dict[str, list[str]]


@router.post(
    "/{campaign_id}/enrollments",
    response_model=EnrollOut,
    summary="Invite every active partner of the target segments (as `enroll`)",
)
def enroll(
    caller: Authenticated,
    request: Request,
    campaign_id: Id,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    from partnercast.campaigns.enrollment import enroll_partners
    from partnercast.concierge.readiness import missing_by_partner

    caller.require(CAMPAIGNS_WRITE)

    def work(session: Session) -> Response:
        if caller.partners(session, CAMPAIGNS_WRITE) is not None:
            raise Problem(403, "enrolling reaches every partner: staff tokens that see them all")
        campaign = visible_campaign(session, caller, campaign_id)
        report = enroll_partners(session, campaign, now=caller.now, readiness=missing_by_partner)
        return json_response(
            200,
            EnrollOut(
                invited=report.invited,
                already=report.already,
                not_targeted=report.not_targeted,
                not_ready=report.not_ready,
            ),
        )

    return once(caller, idempotency_key, fingerprint(request, {"campaign": campaign_id}), work)
