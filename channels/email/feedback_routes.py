"""``POST /feedback/<tenant-slug>``: one bounce or complaint report, as raw message/rfc822.

For a mail provider's inbound webhook, or a pipe from the MTA (``curl --data-binary @-``).
Signed like the CRM webhook: the header ``X-Partnercast-Signature: sha256=<hex
HMAC-SHA256 of the raw body>`` with the tenant's webhook secret (``partnercast crm
secret``). Unknown tenant, missing or wrong signature: 401, nothing written. Answers, in
JSON ``{"outcome", "reason", "kind"}``:

* 200: recorded, unchanged (already recorded: a retried call is harmless) or ignored (a
  success DSN, a not-spam report);
* 422: rejected for good (not a report, or about no delivery of this tenant);
* 409: the message is still being sent; the sender should retry later.

Mounted through the ``register_routes`` hook; the engine is reached only through the host.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from partnercast.channels.email.feedback_intake import import_message
from partnercast.plugins.host import REJECTED, Host
from partnercast.plugins.web import NOT_POST, Now, json_answer, limited_body

log = logging.getLogger(__name__)

MAX_BODY = 10_000_000  # a bounce may carry the whole returned message
SIGNATURE_HEADER = "X-Partnercast-Signature"


def router(host: Host) -> APIRouter:
    """The mail feedback endpoint."""
    routes = APIRouter()

    @routes.post("/feedback/{slug}", include_in_schema=False)
    def feedback(
        slug: str,
        request: Request,
        body: Annotated[bytes | None, Depends(limited_body(MAX_BODY))],
        now: Now,
    ) -> Response:
        if body is None:
            return json_answer(413, {"error": "body too large"})
        signature = request.headers.get(SIGNATURE_HEADER) or None
        tenant_id = host.signed_tenant(slug, body, signature)
        if tenant_id is None:
            return json_answer(401, {"error": "signature not valid"})
        result = import_message(host, tenant_id, body, now=now)
        log.info("mail feedback for tenant %s: %s", tenant_id, result.outcome)
        status = 200
        if result.outcome == REJECTED:
            status = 409 if result.retry else 422
        payload = {"outcome": result.outcome, "reason": result.reason, "kind": result.kind}
        return json_answer(status, payload)

    @routes.api_route("/feedback/{slug}", methods=NOT_POST, include_in_schema=False)
    def not_allowed(slug: str) -> Response:
        return json_answer(405, {"error": "use POST"})

    @routes.api_route("/feedback/{rest:path}", methods=[*NOT_POST, "POST"], include_in_schema=False)
    def anything_else(rest: str) -> Response:
        return json_answer(404, {"error": "not found"})

    return routes
