"""`partnercast status` through the real CLI, on SQLite and PostgreSQL, one tenant or all."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from channels.social.test_uncertain_publish import POSTS_DAY, digital  # noqa: F401
from sqlalchemy.engine import Engine
from sqlmodel import select
from support.world import World, build_world, start

from partnercast.campaigns.throttle import allowance
from partnercast.core import heartbeat
from partnercast.core.accounts import NEEDS_RECONNECT, ChannelAccount
from partnercast.core.models import Delivery, Dispatch
from partnercast.core.tenancy import tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.demo.social_standin import X_POSTS
from partnercast.plugins.manager import default_plugins
from partnercast.tenants.models import Contact, Partner


def _table_rows(stdout: str, title: str) -> list[list[str]]:
    """The body rows of the rich table titled ``title`` (cells stripped)."""
    rows: list[list[str]] = []
    inside = False
    for line in stdout.splitlines():
        if title in line and "│" not in line:
            inside, rows = True, []
            continue
        if inside and line.startswith("│"):
            rows.append([cell.strip() for cell in line.split("│")[1:-1]])
        elif inside and line.startswith("└"):
            return rows
    raise AssertionError(f"no table {title!r} in:\n{stdout}")


def _partner(world: World, external_id: str) -> Partner:
    with tenant_session(world.engine, world.tenant_id) as session:
        return session.exec(select(Partner).where(Partner.external_id == external_id)).one()


def _account(world: World, external_id: str, settings: dict, status: str = "connected") -> None:
    partner = _partner(world, external_id)
    with tenant_session(world.engine, world.tenant_id) as session:
        session.add(
            ChannelAccount(
                partner_id=partner.id or 0,
                channel="email",
                settings=settings,
                status=status,
                created_at=utcnow(),
                updated_at=utcnow(),
            )
        )


def _sent_lately(world: World, external_id: str, count: int, ago: timedelta, skip: int = 0) -> None:
    """``count`` ledger rows of one of the partner's dispatches, sent ``ago``."""
    partner = _partner(world, external_id)
    with tenant_session(world.engine, world.tenant_id) as session:
        dispatch = session.exec(select(Dispatch).where(Dispatch.partner_id == partner.id)).first()
        contacts = session.exec(
            select(Contact)
            .where(Contact.partner_id == partner.id)
            .order_by(Contact.id)
            .offset(skip)
            .limit(count)
        ).all()
        assert dispatch is not None and len(contacts) == count
        for contact in contacts:
            session.add(
                Delivery(
                    dispatch_id=dispatch.id or 0,
                    contact_id=contact.id or 0,
                    email=contact.email,
                    state="sent",
                    sent_at=utcnow() - ago,
                    created_at=utcnow(),
                )
            )


@pytest.fixture
def two_tenants(any_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PARTNERCAST_DATABASE_URL", any_engine.url.render_as_string(False))
    monkeypatch.setenv("PARTNERCAST_RATE_LIMITS", '{"email": {"per_hour": 5000}}')
    monkeypatch.setenv("COLUMNS", "220")
    north = build_world(any_engine, tmp_path / "north", 9, slug="northwind")
    globex = build_world(any_engine, tmp_path / "globex", 9, slug="globex")
    for world in (north, globex):
        start(world)
    _account(north, "P001", {"rate_per_minute": 30}, status=NEEDS_RECONNECT)
    _account(globex, "P002", {"rate_per_day": 777})
    _sent_lately(north, "P003", 3, timedelta(seconds=20))
    _sent_lately(north, "P003", 2, timedelta(minutes=20), skip=3)
    _sent_lately(globex, "P004", 2, timedelta(seconds=5))
    email = default_plugins().channel("email", north.settings)
    partner = _partner(north, "P001")
    settings = north.settings.model_copy(update={"rate_limits": {"email": {"per_hour": 5000}}})
    granted = allowance(
        any_engine,
        settings,
        tenant_id=north.tenant_id,
        partner_id=partner.id or 0,
        channel=email,
        account={"rate_per_minute": 30},
        n=50,
        now=utcnow(),
    )
    assert granted.may_send == 30
    return north, globex


def test_status_for_one_tenant_shows_its_queue_rates_limits_and_accounts_only(
    two_tenants, cli
) -> None:  # type: ignore[no-untyped-def]
    north, _globex = two_tenants
    heartbeat.register(north.engine, "host-a:1:test", now=utcnow())
    result = cli("status", "--tenant", "northwind")
    out = result.stdout
    [email] = _table_rows(out, "queue (northwind)")
    # channel, due running retrying scheduled done failed skipped
    assert email[0] == "email"
    with tenant_session(north.engine, north.tenant_id) as session:
        total = len(session.exec(select(Dispatch)).all())
    assert sum(int(cell) for cell in email[1:8]) == total  # this tenant's dispatches only
    [rates] = _table_rows(out, "send rates, last minute and hour (northwind)")
    assert rates == ["email", "3", "5", "30", "30", "set per account"]  # sent, taken; limit
    accounts = {(row[0], row[1]): row for row in _table_rows(out, "accounts (northwind)")}
    assert accounts[("P001", "email")][2:] == ["needs reconnect", "30/minute", "0 / 0", "30 / 30"]
    assert accounts[("P003", "email")][2:5] == ["default", "none", "3 / 5"]
    assert "777/day" not in out and "globex" not in out  # nothing of the other tenant
    assert ("P004", "email") not in accounts and ("P002", "email") not in accounts
    assert "accounts needing reconnection (1): P001 (email)" in out
    [cap] = _table_rows(out, "provider caps")
    assert cap == ["email", "5000/hour", "30", "30"]
    [worker] = _table_rows(out, "live workers")
    assert worker[0] == "host-a:1:test"


def test_status_without_tenant_shows_every_tenant_labelled(two_tenants, cli) -> None:  # type: ignore[no-untyped-def]
    out = cli("status").stdout
    [email] = _table_rows(out, "send rates, last minute and hour (all tenants)")
    assert email[1:3] == ["5", "7"]  # both tenants' sends
    accounts = {(row[0], row[1]): row for row in _table_rows(out, "accounts (all tenants)")}
    assert accounts[("globex", "P002")][3:5] == ["connected", "777/day"]
    assert accounts[("northwind", "P001")][3] == "needs reconnect"
    assert accounts[("globex", "P004")][5] == "2 / 2"
    assert "no live worker" in out


def test_status_of_an_unknown_tenant_is_one_line(two_tenants, cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("status", "--tenant", "nobody", expect=1)
    assert result.stderr.strip() == "error: --tenant: no tenant 'nobody'"


def test_status_after_the_digital_demo_fits_80_columns_and_prints_no_secret(
    digital,  # type: ignore[no-untyped-def]  # noqa: F811
    cli,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Posts and ads out (one X account refused), then status as a pipe would get it."""
    digital.social.fail_next(X_POSTS, 401)
    digital.tick(POSTS_DAY)
    monkeypatch.setenv("PARTNERCAST_DATABASE_URL", str(digital.world.engine.url))
    monkeypatch.setenv("COLUMNS", "80")
    for args in (["status", "--tenant", "northwind"], ["status"]):
        out = cli(*args).stdout
        assert "…" not in out, out  # nothing cut short
        assert max(len(line) for line in out.splitlines()) <= 80
        for secret in DEMO_SECRETS:
            assert secret not in out
        assert "accounts needing reconnection (1): P001 (x)" in out
        for channel in ("x", "linkedin", "search", "microsite"):
            assert f"│ {channel} " in out
    queue = {row[0]: row for row in _table_rows(out, "queue (all tenants)")}
    done = {name: len([d for d in digital.dispatches(name) if d.state == "done"]) for name in queue}
    assert {name: int(row[5]) for name, row in queue.items()} == done


DEMO_SECRETS = (
    "demo-consumer-secret",
    "demo-token-secret",
    "-token",  # X access tokens: demo-<partner>-token
    "-bearer",  # LinkedIn access tokens: demo-<partner>-bearer
    "standin-developer-token",
    "standin-client-secret",
    "standin-refresh-token",
)
