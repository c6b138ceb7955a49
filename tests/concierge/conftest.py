"""Concierge test fixtures: plain partners (world and sink live in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.engine import Engine

from partnercast.core.tenancy import tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.tenants.models import Partner

AddPartners = Callable[..., list[int]]


@pytest.fixture
def add_partners(engine: Engine) -> AddPartners:
    """Partners with the given external ids and languages (``{"P1": ["de"]}``)."""

    def add(tenant_id: int, languages: dict[str, list[str]]) -> list[int]:
        with tenant_session(engine, tenant_id) as session:
            rows = [
                Partner(
                    external_id=eid,
                    name=f"Partner {eid}",
                    languages=langs,
                    created_at=utcnow(),
                    updated_at=utcnow(),
                )
                for eid, langs in languages.items()
            ]
            session.add_all(rows)
            session.flush()
            return [row.id or 0 for row in rows]

    return add
