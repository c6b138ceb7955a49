"""How a command opens a tenant's data: the tenant ``--tenant`` names, a session scoped to it.

Every tenant command reads and writes through :func:`tenant_scope` (or, when it needs the
engine and the tenant's id for work that opens sessions of its own, :func:`tenant_engine`):
what it touches is that tenant's rows only. An unknown slug is a NotFound, which the root
command group prints as one line. The operator's views that cover every tenant when no
``--tenant`` is given use :func:`tenant_or_system`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from partnercast.core.cli import opened_engine
from partnercast.core.errors import NotFound
from partnercast.core.settings import Settings
from partnercast.core.tenancy import plain_session, system_session, tenant_session
from partnercast.tenants.models import Tenant


def resolve_tenant(engine: Engine, slug: str) -> int:
    """The id of the tenant named ``slug``, or a NotFound error (where: --tenant)."""
    with plain_session(engine) as session:
        tenant = session.exec(select(Tenant).where(Tenant.slug == slug)).first()
    if tenant is None or tenant.id is None:
        raise NotFound(f"no tenant {slug!r}", where="--tenant")
    return tenant.id


@contextmanager
def tenant_engine(slug: str, settings: Settings | None = None) -> Iterator[tuple[Engine, int]]:
    """The migrated engine and the id of the tenant ``slug``; the engine is disposed after."""
    with opened_engine(settings) as engine:
        yield engine, resolve_tenant(engine, slug)


@contextmanager
def tenant_scope(slug: str, settings: Settings | None = None) -> Iterator[Session]:
    """A session scoped to the tenant ``slug``: commits when the block succeeds, rolls
    back when it raises; the engine is disposed after."""
    with (
        tenant_engine(slug, settings) as (engine, tenant_id),
        tenant_session(engine, tenant_id) as session,
    ):
        yield session


@contextmanager
def tenant_or_system(engine: Engine, slug: str | None, *, reason: str) -> Iterator[Session]:
    """A session scoped to the tenant ``slug``, or, with no slug, a system session that
    sees every tenant (``reason`` says why, as :func:`system_session` asks)."""
    if slug:
        with tenant_session(engine, resolve_tenant(engine, slug)) as session:
            yield session
    else:
        with system_session(engine, reason=reason) as session:
            yield session
