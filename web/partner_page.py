"""``GET /partner/<token>``: a partner's own results page, opened by a signed link.

The link (``partnercast partners link P --tenant T``, :mod:`funnel.partner_link`) names
the tenant and the partner. Only a token that verifies opens a session, scoped to the
tenant it names, and the page is built from that one partner's results
(:mod:`funnel.partner_results`). A forged, damaged, moved (another tenant, another
partner) or expired token gets the same short 403 page; a valid link whose partner is gone
gets a 404. Neither says whose link it was.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response

from partnercast.core.errors import NotFound
from partnercast.core.signing import InvalidToken
from partnercast.core.tenancy import tenant_session
from partnercast.funnel.partner_link import PATH, read_token
from partnercast.funnel.partner_results import draw_charts, partner_results
from partnercast.web import partner_template
from partnercast.web.context import Engine, Now, Settings

log = logging.getLogger(__name__)

MAX_TOKEN = 1000
router = APIRouter(include_in_schema=False)


@router.api_route(
    PATH + "{token:path}", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
)
def results_page(
    token: str, request: Request, engine: Engine, settings: Settings, now: Now
) -> Response:
    if request.method not in ("GET", "HEAD"):
        return _error(405, "Not allowed", "GET only.")
    if not token or "/" in token or len(token) > MAX_TOKEN:
        return _refused()
    try:
        link = read_token(settings, token, now=now)
    except InvalidToken:
        return _refused()
    try:
        with tenant_session(engine, link.tenant_id) as session:
            results = partner_results(session, link.partner_id, link.external_id)
    except NotFound:
        return _error(
            404,
            "Not found",
            "These results are no longer here. Ask your partner manager for a new link.",
        )
    charts = draw_charts(results)
    view = partner_template.PageView(results, charts, link.expires_at)
    log.info("partner results page shown (tenant %s)", link.tenant_id)
    return _html(200, partner_template.page_html(view, now))


def _html(status: int, body: str) -> Response:
    headers = {
        "Content-Type": "text/html; charset=utf-8",
        "Content-Security-Policy": partner_template.csp(),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "X-Robots-Tag": "noindex, nofollow",
        "Cache-Control": "no-store, private",
    }
    return Response(body, status_code=status, headers=headers)


def _refused() -> Response:
    return _error(
        403,
        "Link not valid",
        "This link is not valid or has expired. Ask your partner manager for a new one.",
    )


def _error(status: int, title: str, text: str) -> Response:
    return _html(status, partner_template.error_html(title, text))
