"""``POST /crm/<tenant-slug>/leads``: lead stages pushed by a partner's CRM, signed.

The raw body must carry a valid ``X-Partnercast-Signature`` (HMAC-SHA256 with the
tenant's CRM secret); an unknown tenant, a missing or wrong signature all answer 401 and
write nothing (a missing one says how to sign). A signed body that is not JSON, or not
lead records, answers 400 with the reason. Records are applied like rows of ``partnercast
leads import``: each good one is kept, each bad one is listed with its index and reason;
200, or 422 when every record was rejected.

Body: ``{"leads": [{"partner": "P1", "email": "a@b.example", "stage": "sql", ...}]}``,
a list of such records, or one record.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy.engine import Engine

from partnercast.core.settings import Settings
from partnercast.core.tenancy import tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.funnel import rollups
from partnercast.funnel.crm_import import apply_records
from partnercast.funnel.crm_secret import SIGNATURE_HEADER
from partnercast.web.signed_posts import (
    StartResponse,
    json_response,
    read_body,
    signature_of,
    signed_tenant,
)

log = logging.getLogger(__name__)

PREFIX = "/crm/"
UNSIGNED = (
    f"unsigned: send the {SIGNATURE_HEADER} header, sha256=<hex HMAC-SHA256 of the raw body "
    "with the tenant's secret from `partnercast crm secret`>"
)
MAX_BODY = 1_000_000


class CrmRoutes:
    """The CRM webhook endpoint."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        rollups.install()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        parts = environ.get("PATH_INFO", "")[len(PREFIX) :].split("/")
        if len(parts) != 2 or parts[1] != "leads" or not parts[0]:
            return json_response(start_response, "404 Not Found", {"error": "not found"})
        if environ.get("REQUEST_METHOD") != "POST":
            return json_response(start_response, "405 Method Not Allowed", {"error": "use POST"})
        body = read_body(environ, MAX_BODY)
        if body is None:
            return json_response(
                start_response, "413 Content Too Large", {"error": "body too large"}
            )
        signature = signature_of(environ)
        if not signature:
            # Said before the tenant is looked up, so it tells nothing about which exist.
            return json_response(start_response, "401 Unauthorized", {"error": UNSIGNED})
        tenant_id = signed_tenant(self.engine, self.settings, parts[0], body, signature)
        if tenant_id is None:
            return json_response(
                start_response, "401 Unauthorized", {"error": "signature not valid"}
            )
        try:
            records = _records(json.loads(body.decode("utf-8")))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            return json_response(start_response, "400 Bad Request", {"error": f"not JSON: {error}"})
        except ValueError as error:
            return json_response(start_response, "400 Bad Request", {"error": str(error)})
        with tenant_session(self.engine, tenant_id) as session:
            report = apply_records(session, records, now=utcnow())
        log.info("crm webhook: %s created, %s updated", report.created, report.updated)
        # Every record refused: 422, so a CRM that only looks at the status sees it failed
        # (the same rule as `leads import`, which exits 1 when every row was rejected).
        status = "422 Unprocessable Content" if report.kept == 0 else "200 OK"
        return json_response(
            start_response,
            status,
            {
                "created": report.created,
                "updated": report.updated,
                "unchanged": report.unchanged,
                "rejected": [{"index": r.line, "reason": r.reason} for r in report.rejected],
            },
        )


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
