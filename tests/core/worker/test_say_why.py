"""`partnercast tick` and `partnercast status` say why dispatches are retrying or failed:
one line per distinct reason, no traceback (issue 12: "cannot connect to SMTP" was only in
the database). Through the real CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine
from support.breakage import PARTNERS
from support.world import START, World, build_world, respond, start

from partnercast.core.tenancy import plain_session
from partnercast.demo.smtp_sink import free_port
from partnercast.tenants.models import Tenant

FIRST = (START + timedelta(hours=1)).isoformat()


def _lines_with(text: str, needle: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if needle in line]


@pytest.fixture
def unreachable(any_engine: Engine, tmp_path, monkeypatch: pytest.MonkeyPatch) -> World:
    """Six approved partners whose mail goes to an SMTP port nobody listens on."""
    port = free_port()
    world = build_world(any_engine, tmp_path / "world", port)
    respond(world, dict.fromkeys(PARTNERS, "approve"))
    start(world)
    monkeypatch.setenv("PARTNERCAST_DATABASE_URL", any_engine.url.render_as_string(False))
    monkeypatch.setenv("PARTNERCAST_SMTP_PORT", str(port))
    monkeypatch.setenv("PARTNERCAST_SMTP_TIMEOUT_SECONDS", "5")
    monkeypatch.setenv("PARTNERCAST_PUBLIC_BASE_URL", world.settings.public_base_url)
    monkeypatch.setenv("COLUMNS", "250")  # each reason on one line, to read it back whole
    return world


def test_tick_and_status_say_why_in_one_line_per_reason(unreachable: World, cli) -> None:
    ticked = cli("tick", "--now", FIRST)
    assert "6 retrying" in ticked.stdout
    [line] = _lines_with(ticked.stdout, "cannot connect to SMTP 127.0.0.1")
    assert line.startswith("6 retrying (dispatches ") and "northwind" in line
    assert "attempt 1 of 5" in line
    assert "Traceback" not in ticked.stdout + ticked.stderr

    for tenant in ([], ["--tenant", "northwind"]):
        status = cli("status", "--now", FIRST, *tenant)
        [why] = _lines_with(status.stdout, "cannot connect to SMTP 127.0.0.1")
        whose = ", northwind" if not tenant else ""
        assert why.startswith(f"retrying (email, 6 dispatches{whose}): cannot connect to SMTP")
        assert "Traceback" not in status.stdout + status.stderr


def test_status_folds_a_long_reason_at_80_columns_without_cutting_it(
    unreachable: World, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli("tick", "--now", FIRST)
    monkeypatch.setenv("COLUMNS", "80")  # the tables fit 80 columns: so do the reasons
    out = cli("status", "--now", FIRST).stdout
    assert max(len(line) for line in out.splitlines()) <= 80
    folded = " ".join(out.split())
    assert folded.count("retrying (email, 6 dispatches, northwind): cannot connect") == 1
    assert "Connection refused" in folded and "…" not in out


def test_status_shows_a_tenants_reasons_to_that_tenant_only(unreachable: World, cli) -> None:
    cli("tick", "--now", FIRST)
    with plain_session(unreachable.engine) as session:
        session.add(Tenant(slug="other", name="Other", brand={}, created_at=START))
    status = cli("status", "--now", FIRST, "--tenant", "other")
    assert _lines_with(status.stdout, "cannot connect") == []


def test_worker_once_says_why_too(unreachable: World, cli) -> None:
    once = cli("worker", "--once", "--now", FIRST)
    [line] = _lines_with(once.stdout, "cannot connect to SMTP 127.0.0.1")
    assert line.startswith("6 retrying (dispatches ") and "attempt 1 of 5" in line
    assert "Traceback" not in once.stdout + once.stderr
