"""Outgoing webhooks go to public receivers only, unless the deployment allows private ones
(the setting private_webhook_receivers): a tenant's webhook must not make the server call its
own network (the database, a cloud's metadata service) and report the answers back."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import Engine
from support.webhook_receiver import Receiver

from partnercast.core.errors import UserError
from partnercast.core.settings import load_settings
from partnercast.core.tenancy import tenant_session
from partnercast.core.webhook_models import PENDING
from partnercast.core.webhook_outbox import (
    create_endpoint,
    deliver_due,
    list_deliveries,
    list_endpoints,
)
from partnercast.funnel.leads import Lead
from partnercast.tenants.models import Partner
from partnercast.web import outgoing_events

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def public_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default: the suite allows private receivers, for its loopback ones."""
    monkeypatch.delenv("PARTNERCAST_PRIVATE_WEBHOOK_RECEIVERS")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.server.shutdown()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8025/hook",
        "http://169.254.169.254/latest/meta-data/",
        "https://10.1.2.3/hook",
        "http://192.168.0.7:9000/",
        "http://[::1]:8080/hook",
        "http://0.0.0.0/",
    ],
)
def test_a_private_address_is_refused_when_added(
    engine: Engine, tenant_a: int, public_only: None, url: str
) -> None:
    with tenant_session(engine, tenant_a) as session, pytest.raises(UserError) as refused:
        create_endpoint(session, load_settings(), url=url, event_types=["*"], now=NOW)
    assert "not a public address" in str(refused.value) and "private_webhook_receivers" in str(
        refused.value
    )
    with tenant_session(engine, tenant_a) as session:  # allowed where the setting is on
        allowed = load_settings(private_webhook_receivers=True)
        endpoint, _ = create_endpoint(session, allowed, url=url, event_types=["*"], now=NOW)
        assert endpoint.id is not None


def test_a_public_address_and_a_name_are_accepted(
    engine: Engine, tenant_a: int, public_only: None
) -> None:
    with tenant_session(engine, tenant_a) as session:
        for url in ("https://93.184.216.34/hook", "https://crm.example.com/partnercast"):
            create_endpoint(session, load_settings(), url=url, event_types=["*"], now=NOW)


def test_a_name_that_resolves_to_loopback_gets_no_post_and_says_why(
    engine: Engine, tenant_a: int, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    outgoing_events.install()
    by_name = receiver.url.replace("127.0.0.1", "localhost")
    with tenant_session(engine, tenant_a) as session:  # a name: nothing to check yet
        create_endpoint(session, load_settings(), url=by_name, event_types=["*"], now=NOW)
        partner = Partner(external_id="P1", name="Alpha", created_at=NOW, updated_at=NOW)
        session.add(partner)
        session.flush()
        session.add(  # its lead.created event is what goes out
            Lead(
                partner_id=partner.id or 0,
                email="kim@example.com",
                name="Kim",
                created_at=NOW,
                stage_changed_at=NOW,
            )
        )
    monkeypatch.delenv("PARTNERCAST_PRIVATE_WEBHOOK_RECEIVERS")
    report = deliver_due(engine, load_settings(), NOW, owner="w1")
    assert (report.delivered, report.failed) == (0, 1)
    assert receiver.got == []
    with tenant_session(engine, tenant_a) as session:
        (delivery,) = list_deliveries(session)
    assert delivery.state == PENDING and delivery.attempts == 1  # retried later, as any failure
    assert "localhost resolves to" in delivery.last_error
    assert "not a public address" in delivery.last_error

    allowed = load_settings(private_webhook_receivers=True)  # an on-premises deployment
    later = deliver_due(engine, allowed, delivery.next_attempt_at or NOW, owner="w1")
    assert (later.delivered, later.failed) == (1, 0) and len(receiver.got) == 1


def test_the_cli_refuses_a_private_address_in_one_line(
    cli, engine: Engine, tenant_a: int, public_only: None
) -> None:
    result = cli(
        "webhooks",
        "add",
        "http://169.254.169.254/",
        "--events",
        "*",
        "--tenant",
        "vendor-a",
        expect=1,
    )
    assert "not a public address" in result.stderr and result.stderr.strip().count("\n") == 0
    with tenant_session(engine, tenant_a) as session:
        assert list_endpoints(session) == []
