"""Concierge test fixtures: the engine tests' world (real SMTP sink) and plain partners."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from support.world import World, build_world

from partnercast.core.tenancy import tenant_session
from partnercast.smtp_sink import SmtpSink
from partnercast.tenants.models import Partner


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


@pytest.fixture
def world(engine: Engine, tmp_path: Path, sink: SmtpSink) -> World:
    return build_world(engine, tmp_path / "world", sink.port)


AddPartners = Callable[..., list[int]]


@pytest.fixture
def add_partners(engine: Engine) -> AddPartners:
    """Partners with the given external ids and languages (``{"P1": ["de"]}``)."""

    def add(tenant_id: int, languages: dict[str, list[str]]) -> list[int]:
        with tenant_session(engine, tenant_id) as session:
            rows = [
                Partner(external_id=eid, name=f"Partner {eid}", languages=langs)
                for eid, langs in languages.items()
            ]
            session.add_all(rows)
            session.flush()
            return [row.id or 0 for row in rows]

    return add
