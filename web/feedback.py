"""``POST /feedback/<tenant-slug>``: one bounce or complaint report, as raw message/rfc822.

For a mail provider's inbound webhook, or a pipe from the MTA (``curl --data-binary @-``).
Signed like the CRM webhook (:mod:`partnercast.web.crm`): the header
``X-Partnercast-Signature: sha256=<hex HMAC-SHA256 of the raw body>`` with the tenant's
webhook secret (``partnercast crm secret``). Unknown tenant, missing or wrong signature:
401, nothing written. Answers, in JSON ``{"outcome", "reason", "kind"}``:

* 200: recorded, unchanged (already recorded: a retried call is harmless) or ignored (a
  success DSN, a not-spam report);
* 422: rejected for good (not a report, or about no delivery of this tenant);
* 409: the message is still being sent; the sender should retry later.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import select

from partnercast.core.settings import Settings
from partnercast.core.tenancy import plain_session, tenant_session
from partnercast.tenants import rollups
from partnercast.tenants.crm_secret import SIGNATURE_HEADER, verify
from partnercast.tenants.feedback_intake import REJECTED, import_message
from partnercast.tenants.models import Tenant

log = logging.getLogger(__name__)

PREFIX = "/feedback/"
MAX_BODY = 10_000_000  # a bounce may carry the whole returned message
StartResponse = Callable[..., Any]


def _json(start_response: StartResponse, status: str, payload: dict[str, Any]) -> list[bytes]:
    body = json.dumps(payload).encode()
    start_response(
        status,
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
        ],
    )
    return [body]


class FeedbackRoutes:
    """The mail feedback endpoint."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        rollups.install()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        slug = environ.get("PATH_INFO", "")[len(PREFIX) :]
        if not slug or "/" in slug:
            return _json(start_response, "404 Not Found", {"error": "not found"})
        if environ.get("REQUEST_METHOD") != "POST":
            return _json(start_response, "405 Method Not Allowed", {"error": "use POST"})
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            return _json(start_response, "413 Content Too Large", {"error": "body too large"})
        body = environ["wsgi.input"].read(length) if length else b""
        header_key = "HTTP_" + SIGNATURE_HEADER.upper().replace("-", "_")
        tenant_id = self._tenant(slug)
        if tenant_id is None or not self._signed(tenant_id, body, environ.get(header_key)):
            return _json(start_response, "401 Unauthorized", {"error": "signature not valid"})
        result = import_message(self.engine, tenant_id, body)
        log.info("mail feedback for tenant %s: %s", tenant_id, result.outcome)
        status = "200 OK"
        if result.outcome == REJECTED:
            status = "409 Conflict" if result.retry else "422 Unprocessable Content"
        payload = {"outcome": result.outcome, "reason": result.reason, "kind": result.kind}
        return _json(start_response, status, payload)

    def _tenant(self, slug: str) -> int | None:
        with plain_session(self.engine) as session:
            tenant = session.exec(select(Tenant).where(Tenant.slug == slug)).first()
        return tenant.id if tenant else None

    def _signed(self, tenant_id: int, body: bytes, header: str | None) -> bool:
        with tenant_session(self.engine, tenant_id) as session:
            return verify(session, self.settings, body, header)
