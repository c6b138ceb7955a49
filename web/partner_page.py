"""``GET /partner/<token>``: a partner's own results page, opened by a signed link.

The link (``partnercast partners link P --tenant T``, :mod:`tenants.partner_link`) names
the tenant and the partner. Only a token that verifies opens a session, scoped to the
tenant it names, and the page is built from that one partner's results
(:mod:`tenants.partner_results`). A forged, damaged, moved (another tenant, another
partner) or expired token gets the same short 403 page; a valid link whose partner is gone
gets a 404. Neither says whose link it was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Engine

from partnercast.core.errors import NotFound
from partnercast.core.settings import Settings
from partnercast.core.signing import InvalidToken
from partnercast.core.tenancy import tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.funnel.partner_link import PATH, read_token
from partnercast.funnel.partner_results import draw_charts, partner_results
from partnercast.web import partner_template

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
PREFIX = PATH
MAX_TOKEN = 1000


class PartnerPageRoutes:
    """Serves partners' results pages."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        token = environ.get("PATH_INFO", "")[len(PREFIX) :]
        if method not in ("GET", "HEAD"):
            return _error(start_response, "405 Method Not Allowed", "Not allowed", "GET only.")
        if not token or "/" in token or len(token) > MAX_TOKEN:
            return _refused(start_response)
        try:
            link = read_token(self.settings, token, now=utcnow())
        except InvalidToken:
            return _refused(start_response)
        try:
            with tenant_session(self.engine, link.tenant_id) as session:
                results = partner_results(session, link.partner_id, link.external_id)
        except NotFound:
            return _error(
                start_response,
                "404 Not Found",
                "Not found",
                "These results are no longer here. Ask your partner manager for a new link.",
            )
        charts = draw_charts(results)
        body = partner_template.page_html(
            partner_template.PageView(results, charts, link.expires_at)
        ).encode()
        log.info("partner results page shown (tenant %s)", link.tenant_id)
        start_response("200 OK", _headers(len(body)))
        return [b""] if method == "HEAD" else [body]


def _headers(length: int) -> list[tuple[str, str]]:
    return [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Length", str(length)),
        ("Content-Security-Policy", partner_template.CSP),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("X-Frame-Options", "DENY"),
        ("X-Robots-Tag", "noindex, nofollow"),
        ("Cache-Control", "no-store, private"),
    ]


def _refused(start_response: StartResponse) -> list[bytes]:
    return _error(
        start_response,
        "403 Forbidden",
        "Link not valid",
        "This link is not valid or has expired. Ask your partner manager for a new one.",
    )


def _error(start_response: StartResponse, status: str, title: str, text: str) -> list[bytes]:
    body = partner_template.error_html(title, text).encode()
    start_response(status, _headers(len(body)))
    return [body]
