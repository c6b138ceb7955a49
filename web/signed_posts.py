"""The tenant a signed POST comes from (the CRM webhook; mail feedback, via the host).

The tenant a slug names when the body carries that tenant's signature
(``X-Partnercast-Signature``, HMAC-SHA256 with the tenant's webhook secret:
:mod:`partnercast.funnel.crm_secret`).
"""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import select

from partnercast.core.settings import Settings
from partnercast.core.tenancy import plain_session, tenant_session
from partnercast.funnel.crm_secret import verify
from partnercast.tenants.models import Tenant


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
