"""``/api/v1/reports/programme``: the vendor's programme report as ``partnercast report``
writes it (one HTML page, its charts inlined as data: URIs) and its data files
(``funnel.csv``, ``cycles.csv``, ``scores.csv``, formulas neutralised as the command's are).

The programme report holds every partner's numbers, so only a staff token that sees every
partner gets it: a partner token, or a concierge token limited to the partners one concierge
covers, is 403. The page alone is built per request; each partner's own report is
``GET /partners/{id}/report``, which the page's list of partners links to.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from fastapi import APIRouter, Response

from partnercast.core.tenancy import tenant_session
from partnercast.funnel.reports import PROGRAMME_CSV, write_programme_csv, write_programme_report
from partnercast.tenants.models import Partner
from partnercast.web.api.auth import Authenticated, Caller
from partnercast.web.api.common import ERRORS
from partnercast.web.api.segments import CHARTS_LOCK, inline_images
from partnercast.web.problems import Problem

router = APIRouter(tags=["segments and reports"], responses=ERRORS)
PROGRAMME = "/reports/programme"
API_PREFIX = "/api/v1"


def _staff_seeing_everyone(caller: Caller) -> None:
    if caller.partner_id is not None:
        raise Problem(403, "the programme report is the vendor's: a partner token gets its own")
    with tenant_session(caller.engine, caller.tenant_id) as session:
        if caller.partners(session) is not None:
            raise Problem(
                403, "the programme report has every partner: staff tokens that see them all"
            )


def _partner_href(partner: Partner) -> str:
    return f"{API_PREFIX}/partners/{partner.id}/report"


@router.get(
    PROGRAMME,
    summary="The programme report (HTML), as `report` writes it (partners' reports apart)",
    response_class=Response,
    responses={200: {"content": {"text/html": {"schema": {"type": "string"}}}}},
)
def programme_report(caller: Authenticated) -> Response:
    _staff_seeing_everyone(caller)
    with (
        tenant_session(caller.engine, caller.tenant_id) as session,
        tempfile.TemporaryDirectory(prefix="partnercast-api-") as folder,
        CHARTS_LOCK,
    ):
        page = write_programme_report(
            session, Path(folder), now=caller.now, partner_href=_partner_href
        )
        html = inline_images(page.read_text(encoding="utf-8"), page.parent)
    data = "|".join(PROGRAMME_CSV)
    html = re.sub(rf'href="({data})\.csv"', rf'href="{API_PREFIX}{PROGRAMME}/\1.csv"', html)
    return Response(html, media_type="text/html; charset=utf-8")


def _csv_route(name: str) -> None:
    def programme_csv(caller: Authenticated) -> Response:
        _staff_seeing_everyone(caller)
        with (
            tenant_session(caller.engine, caller.tenant_id) as session,
            tempfile.TemporaryDirectory(prefix="partnercast-api-") as folder,
        ):
            path = write_programme_csv(session, name, Path(folder) / f"{name}.csv")
            body = path.read_bytes()
        return Response(
            body,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )

    programme_csv.__name__ = f"programme_{name}_csv"
    router.add_api_route(
        f"{PROGRAMME}/{name}.csv",
        programme_csv,
        methods=["GET"],
        summary=f"The programme report's {name}.csv, as `report` writes it",
        response_class=Response,
        responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
    )


for _name in PROGRAMME_CSV:
    _csv_route(_name)
