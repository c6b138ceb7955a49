"""What the engine's signed POST endpoints share (the CRM webhook, mail feedback).

A JSON answer, the raw body read within a size limit, and the tenant a slug names when
the body carries that tenant's signature (``X-Partnercast-Signature``, HMAC-SHA256 with
the tenant's webhook secret: :mod:`partnercast.funnel.crm_secret`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import select

from partnercast.core.settings import Settings
from partnercast.core.tenancy import plain_session, tenant_session
from partnercast.funnel.crm_secret import SIGNATURE_HEADER, verify
from partnercast.tenants.models import Tenant

StartResponse = Callable[..., Any]
_SIGNATURE_KEY = "HTTP_" + SIGNATURE_HEADER.upper().replace("-", "_")


def json_response(
    start_response: StartResponse, status: str, payload: dict[str, Any]
) -> list[bytes]:
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


def read_body(environ: dict[str, Any], limit: int) -> bytes | None:
    """The request's body, or None when its Content-Length is not a number or is over
    ``limit``."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if length < 0 or length > limit:
        return None
    return environ["wsgi.input"].read(length) if length else b""


def signature_of(environ: dict[str, Any]) -> str | None:
    return environ.get(_SIGNATURE_KEY) or None


def signed_tenant(
    engine: Engine, settings: Settings, slug: str, body: bytes, signature: str | None
) -> int | None:
    """The id of the tenant ``slug`` names if ``body`` carries its signature, else None
    (an unknown tenant and a bad signature look the same to the caller)."""
    with plain_session(engine) as session:
        tenant = session.exec(select(Tenant).where(Tenant.slug == slug)).first()
    if tenant is None or tenant.id is None:
        return None
    with tenant_session(engine, tenant.id) as session:
        return tenant.id if verify(session, settings, body, signature) else None
