"""Shared fixtures: a migrated database per test, two tenants, and the real CLI."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner, Result

from partnercast.core.db import make_engine, upgrade
from partnercast.core.tenancy import plain_session
from partnercast.tenants.models import Tenant

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh SQLite file, also exported so that CLI commands use it."""
    url = f"sqlite:///{tmp_path / 'partnercast.db'}"
    monkeypatch.setenv("PARTNERCAST_DATABASE_URL", url)
    monkeypatch.delenv("PARTNERCAST_TENANT", raising=False)
    monkeypatch.chdir(tmp_path)
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A migrated engine on the fresh database."""
    engine = make_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def make_tenant(engine: Engine, slug: str, name: str | None = None) -> int:
    with plain_session(engine) as session:
        tenant = Tenant(
            slug=slug,
            name=name or slug.title(),
            brand={"legal_name": f"{slug.title()} Inc.", "postal_address": "1 Main St"},
        )
        session.add(tenant)
    assert tenant.id is not None
    return tenant.id


@pytest.fixture
def tenant_a(engine: Engine) -> int:
    return make_tenant(engine, "vendor-a")


@pytest.fixture
def tenant_b(engine: Engine) -> int:
    return make_tenant(engine, "vendor-b")


@dataclass
class Cli:
    """Runs the real ``partnercast`` command in-process."""

    runner: CliRunner

    def __call__(self, *args: str, expect: int | None = 0) -> Result:
        from partnercast.cli import build_app

        result = self.runner.invoke(build_app(), list(args), catch_exceptions=False)
        if expect is not None and result.exit_code != expect:
            raise AssertionError(
                f"partnercast {' '.join(args)} exited {result.exit_code}, expected {expect}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result


@pytest.fixture
def cli(database_url: str) -> Cli:
    return Cli(CliRunner())
