"""RFC 8058 one-click unsubscribe: ``/u/<token>``.

``POST /u/<token>`` (what mail clients send, with the body ``List-Unsubscribe=One-Click``)
suppresses the address at once; ``GET /u/<token>`` (a person clicking the link) shows a
page with a confirm button, because link scanners fetch URLs with GET and must not
unsubscribe anyone. The token is the message's recipient token (or, for messages sent
before it, the older signed list): :mod:`partnercast.tenants.suppressions`.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response

from partnercast.core.signing import InvalidToken
from partnercast.tenants.suppressions import unsubscribe_by_token
from partnercast.web.context import Engine, Now, Settings
from partnercast.web.templating import page

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)
OTHER_METHODS = ["PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]


@router.get("/u/{token:path}")
def confirm(token: str) -> Response:
    """The confirm button: GET never unsubscribes (link scanners follow links)."""
    if not token:
        return page(404, "Not found", heading="Not found")
    return page(200, "Unsubscribe", "unsubscribe.html", token=token)


@router.post("/u/{token:path}")
def unsubscribe(token: str, engine: Engine, settings: Settings, now: Now) -> Response:
    """One click, any body: the address is suppressed in the token's tenant."""
    if not token:
        return page(404, "Not found", heading="Not found")
    try:
        result = unsubscribe_by_token(engine, settings, token, now=now)
    except InvalidToken as error:
        return page(400, "Link not valid", heading=error.message)
    log.info("unsubscribed a contact (new=%s)", result.newly_suppressed)
    return page(200, "Unsubscribed", "unsubscribed.html", email=result.email)


@router.api_route("/u/{token:path}", methods=OTHER_METHODS)
def not_allowed(token: str) -> Response:
    if not token:
        return page(404, "Not found", heading="Not found")
    return page(405, "Not allowed", heading="Not allowed")
