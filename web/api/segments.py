"""``/api/v1/segments`` (their member counts; POST loads a segments YAML file, as
``partnercast segments load``: nothing is written unless the whole file is valid) and
``/api/v1/partners/{id}/report`` (one partner's HTML report, as ``partnercast report
--partner``: its own figures only, fit to hand to that partner)."""

from __future__ import annotations

import base64
import hashlib
import re
import tempfile
import threading
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Request, Response, UploadFile
from pydantic import BaseModel
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from partnercast.core.errors import UserError
from partnercast.core.tenancy import tenant_session
from partnercast.funnel.reports import write_partner_report
from partnercast.tenants.access import CAMPAIGNS_WRITE
from partnercast.tenants.segments import load_segments_file, segments_with_counts
from partnercast.web.api.auth import Authenticated
from partnercast.web.api.common import ERRORS, Id
from partnercast.web.api.conventions import (
    IdempotencyKeyHeader,
    fingerprint,
    json_response,
    once,
)
from partnercast.web.api.partners import visible_partner
from partnercast.web.problems import Problem

router = APIRouter(tags=["segments and reports"], responses=ERRORS)
MAX_YAML = 4_000_000
CHARTS_LOCK = threading.Lock()
"""matplotlib's pyplot is one state machine per process: one report draws at a time."""


class SegmentOut(BaseModel):
    id: int
    key: str
    name: str
    rule: dict[str, Any]
    partners: int
    created_at: datetime


def _segments(session: Session) -> list[SegmentOut]:
    return [
        SegmentOut(
            id=segment.id or 0,
            key=segment.key,
            name=segment.name,
            rule=segment.rule,
            partners=count,
            created_at=segment.created_at,
        )
        for segment, count in segments_with_counts(session)
    ]


@router.get("/segments", response_model=list[SegmentOut], summary="Segments and their sizes")
def list_segments(caller: Authenticated) -> Response:
    if caller.partner_id is not None:
        raise Problem(403, "segments are the vendor's: a partner token sees none")
    with tenant_session(caller.engine, caller.tenant_id) as session:
        return json_response(200, _segments(session))


@router.post(
    "/segments",
    response_model=list[SegmentOut],
    summary="Load a segments YAML file (as `segments load`)",
)
async def load_segments(
    caller: Authenticated,
    request: Request,
    file: Annotated[UploadFile, File(description="The segments YAML file.")],
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    caller.require(CAMPAIGNS_WRITE)
    content = await file.read(MAX_YAML + 1)
    if len(content) > MAX_YAML:
        raise Problem(413, f"file: over {MAX_YAML} bytes")

    def work(session: Session) -> Response:
        if caller.partners(session, CAMPAIGNS_WRITE) is not None:
            raise Problem(403, "segments reach every partner: staff tokens that see them all")
        with tempfile.TemporaryDirectory(prefix="partnercast-api-") as folder:
            path = Path(folder) / "segments.yaml"
            path.write_bytes(content)
            try:
                load_segments_file(session, path, now=caller.now)
            except UserError as error:
                text = str(error).replace(str(path), "file")
                raise Problem(422, text.splitlines()[0], errors=[("file", text)]) from None
        return json_response(200, _segments(session))

    answer: Response = await run_in_threadpool(
        once,
        caller,
        idempotency_key,
        fingerprint(request, {"file": hashlib.sha256(content).hexdigest()}),
        work,
    )
    return answer


@router.get(
    "/partners/{partner_id}/report",
    summary="One partner's report (HTML), as `report --partner`",
    response_class=Response,
    responses={200: {"content": {"text/html": {"schema": {"type": "string"}}}}},
)
def partner_report(caller: Authenticated, partner_id: Id) -> Response:
    with tenant_session(caller.engine, caller.tenant_id) as session:
        partner = visible_partner(session, caller, partner_id)
        with tempfile.TemporaryDirectory(prefix="partnercast-api-") as folder, CHARTS_LOCK:
            written = write_partner_report(
                session, partner.external_id, Path(folder), now=caller.now
            )
            page = written if written.is_file() else written / "index.html"
            html = inline_images(page.read_text(encoding="utf-8"), page.parent)
    return Response(html, media_type="text/html; charset=utf-8")


def inline_images(html: str, folder: Path) -> str:
    """The report's charts as data: URIs, so that the one HTML answer is the whole report."""

    def inline(match: re.Match[str]) -> str:
        image = folder / match.group(1)
        if not image.is_file() or image.parent != folder:
            return match.group(0)
        data = base64.b64encode(image.read_bytes()).decode("ascii")
        return f'src="data:image/png;base64,{data}"'

    return re.sub(r'src="([A-Za-z0-9_.-]+\.png)"', inline, html)
