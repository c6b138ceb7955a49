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
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import select

from partnercast.core.settings import Settings
from partnercast.core.tenancy import plain_session, tenant_session
from partnercast.tenants import rollups
from partnercast.tenants.crm_import import apply_records
from partnercast.tenants.crm_secret import SIGNATURE_HEADER, verify
from partnercast.tenants.models import Tenant

log = logging.getLogger(__name__)

PREFIX = "/crm/"
UNSIGNED = (
    f"unsigned: send the {SIGNATURE_HEADER} header, sha256=<hex HMAC-SHA256 of the raw body "
    "with the tenant's secret from `partnercast crm secret`>"
)
MAX_BODY = 1_000_000
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


class CrmRoutes:
    """The CRM webhook endpoint."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        rollups.install()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        parts = environ.get("PATH_INFO", "")[len(PREFIX) :].split("/")
        if len(parts) != 2 or parts[1] != "leads" or not parts[0]:
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
        if not environ.get(header_key):
            # Said before the tenant is looked up, so it tells nothing about which exist.
            return _json(start_response, "401 Unauthorized", {"error": UNSIGNED})
        tenant_id = self._tenant(parts[0])
        if tenant_id is None or not self._signed(tenant_id, body, environ.get(header_key)):
            return _json(start_response, "401 Unauthorized", {"error": "signature not valid"})
        try:
            records = _records(json.loads(body.decode("utf-8")))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            return _json(start_response, "400 Bad Request", {"error": f"not JSON: {error}"})
        except ValueError as error:
            return _json(start_response, "400 Bad Request", {"error": str(error)})
        with tenant_session(self.engine, tenant_id) as session:
            report = apply_records(session, records)
        log.info("crm webhook: %s created, %s updated", report.created, report.updated)
        # Every record refused: 422, so a CRM that only looks at the status sees it failed
        # (the same rule as `leads import`, which exits 1 when every row was rejected).
        status = "422 Unprocessable Content" if report.kept == 0 else "200 OK"
        return _json(
            start_response,
            status,
            {
                "created": report.created,
                "updated": report.updated,
                "unchanged": report.unchanged,
                "rejected": [{"index": r.line, "reason": r.reason} for r in report.rejected],
            },
        )

    def _tenant(self, slug: str) -> int | None:
        with plain_session(self.engine) as session:
            tenant = session.exec(select(Tenant).where(Tenant.slug == slug)).first()
        return tenant.id if tenant else None

    def _signed(self, tenant_id: int, body: bytes, header: str | None) -> bool:
        with tenant_session(self.engine, tenant_id) as session:
            return verify(session, self.settings, body, header)


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
