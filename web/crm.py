"""``POST /crm/<tenant-slug>/leads``: lead stages pushed by a partner's CRM, signed.

Signed by the Standard Webhooks scheme with the tenant's secret (``webhook-id``,
``webhook-timestamp``, ``webhook-signature``: :mod:`partnercast.funnel.crm_secret`). An
unknown tenant, missing headers, a wrong signature or a timestamp more than 5 minutes from
the server's clock answer 401 and write nothing (missing headers say how to sign, and the
old ``X-Partnercast-Signature`` says it is no longer accepted); an id this tenant accepted
before is a replay: nothing written, answered 200 ``{"duplicate": true, "reason"}`` (a
sender retrying a call whose answer it lost must see it delivered, not retry for ever).
A signed body that is not JSON, or not lead
records, answers 400 with the reason. Records are applied like rows of ``partnercast
leads import``, at the CRM's time (a record's ``occurred_at``, else the message's
``webhook-timestamp``), so an older record never overwrites a newer one: each good one is
kept, each bad one is listed with its index and reason; 200, or 422 when every record was
rejected. The message's id is accepted in the same transaction as its records: a call
that fails can be sent again.

Body: ``{"leads": [{"partner": "P1", "email": "a@b.example", "stage": "sql", ...}]}``,
a list of such records, or one record.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from partnercast.core.tenancy import tenant_session
from partnercast.funnel.crm_import import apply_records
from partnercast.funnel.crm_secret import claim_message
from partnercast.plugins.web import NOT_POST, json_answer, limited_body
from partnercast.web.context import Engine, Now, Settings
from partnercast.web.signed_posts import ALREADY_RECEIVED, Refused, signed_message

log = logging.getLogger(__name__)

MAX_BODY = 1_000_000


router = APIRouter(include_in_schema=False)


@router.post("/crm/{slug}/leads")
def leads(
    slug: str,
    request: Request,
    body: Annotated[bytes | None, Depends(limited_body(MAX_BODY))],
    engine: Engine,
    settings: Settings,
    now: Now,
) -> Response:
    """Apply the signed lead records of a partner's CRM."""
    if body is None:
        return json_answer(413, {"error": "body too large"})
    try:
        post = signed_message(engine, settings, slug, body, request.headers, now=now)
    except Refused as refused:
        return json_answer(refused.status, {"error": refused.reason})
    try:
        records = _records(json.loads(body.decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return json_answer(400, {"error": f"not JSON: {error}"})
    except ValueError as error:
        return json_answer(400, {"error": str(error)})
    except RecursionError:  # [[[[... a few hundred thousand deep fits in the body limit
        return json_answer(400, {"error": "not JSON: nested too deeply"})
    with tenant_session(engine, post.tenant_id) as session:
        if not claim_message(session, post.message, source="crm", now=now):
            return json_answer(200, {"duplicate": True, "reason": ALREADY_RECEIVED})
        report = apply_records(session, records, now=now, sent_at=post.message.sent_at)
    log.info("crm webhook: %s created, %s updated", report.created, report.updated)
    # Every record refused: 422, so a CRM that only looks at the status sees it failed
    # (the same rule as `leads import`, which exits 1 when every row was rejected).
    return json_answer(
        422 if report.kept == 0 else 200,
        {
            "created": report.created,
            "updated": report.updated,
            "unchanged": report.unchanged,
            "rejected": [{"index": r.line, "reason": r.reason} for r in report.rejected],
        },
    )


@router.api_route("/crm/{slug}/leads", methods=NOT_POST)
def leads_not_allowed(slug: str) -> Response:
    return json_answer(405, {"error": "use POST"})


@router.api_route("/crm/{rest:path}", methods=[*NOT_POST, "POST"])
def anything_else(rest: str) -> Response:
    return json_answer(404, {"error": "not found"})


def _records(document: Any) -> list[Any]:
    if isinstance(document, dict) and "leads" in document:
        document = document["leads"]
    elif isinstance(document, dict):
        document = [document]
    if not isinstance(document, list):
        raise ValueError('expected {"leads": [...]}, a list of lead records, or one record')
    if not document:
        raise ValueError("no lead records")
    return document
