"""A tenant chooses at least once or at most once, through the real ``partnercast`` CLI."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from partnercast.core.tenancy import plain_session
from partnercast.tenants.models import Tenant


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")


def _stored(engine: Engine, slug: str) -> str:
    with plain_session(engine) as session:
        return session.exec(select(Tenant).where(Tenant.slug == slug)).one().delivery_guarantee


def _error_line(result) -> str:  # type: ignore[no-untyped-def]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_the_guarantee_is_set_at_creation_changed_and_listed(cli, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    cli("tenants", "create", "acme", "--name", "Acme")
    cli("tenants", "create", "bolt", "--name", "Bolt", "--delivery-guarantee", "at-most-once")
    assert _stored(engine, "acme") == "at_least_once"  # the default
    assert _stored(engine, "bolt") == "at_most_once"
    listing = cli("tenants", "list").stdout
    assert "delivery" in listing
    rows = {
        line.split()[1]: line for line in listing.splitlines() if "acme" in line or "bolt" in line
    }
    assert "at-least-once" in rows["acme"] and "at-most-once" in rows["bolt"]

    changed = cli("tenants", "set", "acme", "--delivery-guarantee", "at-most-once")
    assert "tenant acme: delivery guarantee at-most-once (was at-least-once)" in changed.stdout
    assert _stored(engine, "acme") == "at_most_once"
    assert _stored(engine, "bolt") == "at_most_once"  # only the named tenant changed
    again = cli("tenants", "set", "acme", "--delivery-guarantee", "AT_MOST_ONCE")
    assert "(unchanged)" in again.stdout
    cli("tenants", "set", "bolt", "--delivery-guarantee", "at-least-once")
    assert _stored(engine, "bolt") == "at_least_once" and _stored(engine, "acme") == "at_most_once"


def test_a_bad_value_or_tenant_is_one_clear_line_and_changes_nothing(cli, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    cli("tenants", "create", "acme", "--name", "Acme")
    bad = cli("tenants", "set", "acme", "--delivery-guarantee", "exactly-once", expect=1)
    line = _error_line(bad)
    assert "--delivery-guarantee" in line and "'exactly-once'" in line
    assert "at-least-once or at-most-once" in line
    assert _stored(engine, "acme") == "at_least_once"

    unknown = cli("tenants", "set", "nope", "--delivery-guarantee", "at-most-once", expect=1)
    assert "no tenant 'nope'" in _error_line(unknown)

    refused = cli(
        "tenants", "create", "bolt", "--name", "Bolt", "--delivery-guarantee", "maybe", expect=1
    )
    assert "--delivery-guarantee" in _error_line(refused)
    with plain_session(engine) as session:
        assert session.exec(select(Tenant).where(Tenant.slug == "bolt")).first() is None
