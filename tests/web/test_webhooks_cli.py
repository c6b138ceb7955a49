"""``partnercast webhooks``, as an agency admin uses it: add a receiver, let the engine
work, see the deliveries, replay one; the secret is shown once and never again."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import Cli
from sqlalchemy.engine import Engine
from support.webhook_receiver import Receiver

from partnercast.concierge.tasks import add_task
from partnercast.core.tenancy import tenant_session
from partnercast.tenants.models import Partner


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.server.shutdown()


def _task_opened(engine: Engine, tenant_id: int, now: datetime) -> None:
    with tenant_session(engine, tenant_id) as session:
        partner = Partner(external_id="P1", name="Alpha", created_at=now, updated_at=now)
        session.add(partner)
        session.flush()
        add_task(session, partner, kind="call", due_at=now, created_by="test", now=now)


def test_add_deliver_list_and_replay(
    cli: Cli, engine: Engine, tenant_a: int, receiver: Receiver
) -> None:
    now = datetime.now(UTC)
    added = cli("webhooks", "add", receiver.url, "--events", "task.opened", "--tenant", "vendor-a")
    secret = added.stdout.strip()
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/=]{32}", secret), added.stdout
    assert secret not in added.stderr and "signing secret" in added.stderr
    listed = cli("webhooks", "list", "--tenant", "vendor-a")
    assert receiver.url in listed.stdout and "enabled" in listed.stdout
    assert secret not in listed.stdout

    _task_opened(engine, tenant_a, now)
    delivered = cli("webhooks", "deliver")

    assert "1 delivered, 0 failed" in delivered.stdout
    (body,) = receiver.verified(secret)
    assert body["type"] == "task.opened" and body["data"]["kind"] == "call"
    shown = cli("webhooks", "deliveries", "--tenant", "vendor-a").stdout
    assert body["_id"] in shown and "delivered" in shown and "HTTP 204" in shown

    delivery_id = shown.split()[0]
    cli("webhooks", "replay", delivery_id, "--tenant", "vendor-a")
    cli("webhooks", "deliver")
    again = receiver.verified(secret)
    assert [b["_id"] for b in again] == [body["_id"], body["_id"]]


def test_mistakes_are_one_line(cli: Cli, tenant_a: int, tenant_b: int) -> None:
    wrong = cli("webhooks", "add", "ftp://x", "--events", "*", "--tenant", "vendor-a", expect=1)
    assert "not an http(s) URL" in wrong.stderr and "Traceback" not in wrong.stderr
    unknown = cli(
        "webhooks",
        "add",
        "https://h.example",
        "--events",
        "lead.won",
        "--tenant",
        "vendor-a",
        expect=1,
    )
    assert "unknown event type 'lead.won'" in unknown.stderr
    cli("webhooks", "add", "https://h.example/x", "--events", "*", "--tenant", "vendor-a")
    other = cli("webhooks", "disable", "1", "--tenant", "vendor-b", expect=1)
    assert "no webhook endpoint 1" in other.stderr  # another tenant's id is not found
    bad_state = cli("webhooks", "deliveries", "--tenant", "vendor-a", "--state", "x", expect=1)
    assert "--state" in bad_state.stderr


def test_a_disabled_endpoint_is_a_task_in_the_concierges_list(
    cli: Cli, engine: Engine, tenant_a: int, receiver: Receiver
) -> None:
    from datetime import timedelta

    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    cli("webhooks", "add", receiver.url, "--events", "*", "--tenant", "vendor-a")
    receiver.up = False
    _task_opened(engine, tenant_a, now)
    for hours in range(0, 24 * 6, 12):
        cli("webhooks", "deliver", "--now", (now + timedelta(hours=hours)).isoformat())
    listed = cli("webhooks", "list", "--tenant", "vendor-a").stdout
    assert "disabled (every delivery failed since" in listed
    tasks = cli("tasks", "--tenant", "vendor-a", "--now", (now + timedelta(days=6)).isoformat())
    assert "(vendor)" in tasks.stdout and "webhook_disabled" in tasks.stdout


def test_a_consent_withdrawn_in_an_import_is_reported_as_a_suppression(
    cli: Cli, engine: Engine, tenant_a: int, receiver: Receiver, tmp_path: Path
) -> None:
    """An import writes its suppressions in bulk, beside the flush the keeper watches: it
    reports them itself, in the same transaction."""
    partners = tmp_path / "partners.csv"
    partners.write_text("external_id,name,legal_name,postal_address\nP1,Alpha,Alpha Ltd,1 Road\n")
    contacts = tmp_path / "contacts.csv"
    contacts.write_text(
        "external_id,email,consent\nC1,ann@example.com,yes\nC2,bob@example.com,yes\n"
    )
    cli("partners", "import", str(partners), "--tenant", "vendor-a")
    cli("contacts", "import", "P1", str(contacts), "--tenant", "vendor-a")
    secret = cli(
        "webhooks", "add", receiver.url, "--events", "contact.suppressed", "--tenant", "vendor-a"
    ).stdout.strip()
    contacts.write_text(
        "external_id,email,consent\nC1,ann@example.com,no\nC2,bob@example.com,yes\n"
    )
    cli("contacts", "import", "P1", str(contacts), "--tenant", "vendor-a")
    cli("webhooks", "deliver")

    (body,) = receiver.verified(secret)
    assert body["type"] == "contact.suppressed"
    assert body["data"]["email"] == "ann@example.com" and body["data"]["reason"] == "withdrawn"
