"""``POST /feedback/<tenant-slug>``: one bounce or complaint report, as raw message/rfc822.

For a mail provider's inbound webhook, or a pipe from the MTA (``curl --data-binary @-``).
Signed like the CRM webhook, by the Standard Webhooks scheme with the tenant's webhook
secret (``partnercast crm secret``): headers ``webhook-id``, ``webhook-timestamp`` (within 5
minutes of the server's clock) and ``webhook-signature`` (``v1,<base64 HMAC-SHA256 of
"<id>.<timestamp>.<raw body>">``). Unknown tenant, missing headers (the old
``X-Partnercast-Signature`` is refused, saying so), a wrong signature or a stale
timestamp: 401, nothing written; an id this tenant accepted before (a replay, or a retry
whose answer was lost): 200 ``unchanged``, nothing written. Otherwise, in JSON
``{"outcome", "reason", "kind"}``:

* 200: recorded, unchanged (already recorded) or ignored (a success DSN, a not-spam
  report);
* 422: rejected for good (not a report, or about no delivery of this tenant);
* 409: the message is still being sent; the sender should retry later (its id is not
  kept, so the retry is accepted).

Reports apply in any order: a hard bounce is final, so an older soft bounce or delay that
arrives after it changes no delivery's state.

Mounted through the ``register_routes`` hook; the engine is reached only through the host.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from partnercast.channels.email.feedback_intake import import_message
from partnercast.plugins.host import REJECTED, REPLAY, UNCHANGED, Host, NotSigned
from partnercast.plugins.web import NOT_POST, Now, json_answer, limited_body

log = logging.getLogger(__name__)

MAX_BODY = 10_000_000  # a bounce may carry the whole returned message


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
        try:
            post = host.accept_signed(slug, body, request.headers, source="feedback", now=now)
        except NotSigned as refused:
            if refused.status == REPLAY:  # delivered before: the sender must not retry it
                payload = {"outcome": UNCHANGED, "reason": refused.reason, "kind": None}
                return json_answer(200, payload)
            return json_answer(refused.status, {"error": refused.reason})
        try:
            result = import_message(host, post.tenant_id, body, now=now)
        except BaseException:
            host.release_signed(post)  # not recorded: the sender's retry must be accepted
            raise
        log.info("mail feedback for tenant %s: %s", post.tenant_id, result.outcome)
        status = 200
        if result.outcome == REJECTED:
            status = 409 if result.retry else 422
            if result.retry:
                host.release_signed(post)
        payload = {"outcome": result.outcome, "reason": result.reason, "kind": result.kind}
        return json_answer(status, payload)

    @routes.api_route("/feedback/{slug}", methods=NOT_POST, include_in_schema=False)
    def not_allowed(slug: str) -> Response:
        return json_answer(405, {"error": "use POST"})

    @routes.api_route("/feedback/{rest:path}", methods=[*NOT_POST, "POST"], include_in_schema=False)
    def anything_else(rest: str) -> Response:
        return json_answer(404, {"error": "not found"})

    return routes
