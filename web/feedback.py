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

import logging
from typing import Any

from sqlalchemy.engine import Engine

from partnercast.campaigns.delivery_feedback import REJECTED, import_message
from partnercast.core.settings import Settings
from partnercast.funnel import rollups
from partnercast.web.signed_posts import (
    StartResponse,
    json_response,
    read_body,
    signature_of,
    signed_tenant,
)

log = logging.getLogger(__name__)

PREFIX = "/feedback/"
MAX_BODY = 10_000_000  # a bounce may carry the whole returned message


class FeedbackRoutes:
    """The mail feedback endpoint."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        rollups.install()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        slug = environ.get("PATH_INFO", "")[len(PREFIX) :]
        if not slug or "/" in slug:
            return json_response(start_response, "404 Not Found", {"error": "not found"})
        if environ.get("REQUEST_METHOD") != "POST":
            return json_response(start_response, "405 Method Not Allowed", {"error": "use POST"})
        body = read_body(environ, MAX_BODY)
        if body is None:
            return json_response(
                start_response, "413 Content Too Large", {"error": "body too large"}
            )
        tenant_id = signed_tenant(self.engine, self.settings, slug, body, signature_of(environ))
        if tenant_id is None:
            return json_response(
                start_response, "401 Unauthorized", {"error": "signature not valid"}
            )
        result = import_message(self.engine, tenant_id, body)
        log.info("mail feedback for tenant %s: %s", tenant_id, result.outcome)
        status = "200 OK"
        if result.outcome == REJECTED:
            status = "409 Conflict" if result.retry else "422 Unprocessable Content"
        payload = {"outcome": result.outcome, "reason": result.reason, "kind": result.kind}
        return json_response(start_response, status, payload)
