"""Outgoing webhooks, end to end: what the engine records reaches a real HTTP receiver,
signed by the Standard Webhooks scheme, once, in order per subject, after an outage too."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select
from standardwebhooks import Webhook
from support.webhook_receiver import Receiver

from partnercast.concierge.models import ConciergeTask
from partnercast.concierge.tasks import add_task
from partnercast.core.settings import load_settings
from partnercast.core.tenancy import tenant_session
from partnercast.core.webhook_models import DELIVERED, PENDING, WebhookDelivery, WebhookEndpoint
from partnercast.core.webhook_outbox import (
    create_endpoint,
    deliver_due,
    list_deliveries,
    replay,
    set_enabled,
)
from partnercast.funnel.leads import Lead
from partnercast.funnel.models import LeadStage
from partnercast.tenants.models import Partner
from partnercast.tenants.suppressions import suppress
from partnercast.web import outgoing_events


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.server.shutdown()


@pytest.fixture(autouse=True)
def reported() -> None:
    outgoing_events.install()


def _partner(engine: Engine, tenant_id: int, now: datetime) -> Partner:
    with tenant_session(engine, tenant_id) as session:
        partner = Partner(external_id="P1", name="Alpha", created_at=now, updated_at=now)
        session.add(partner)
        return partner


def _endpoint(engine: Engine, tenant_id: int, url: str, types: list[str], now: datetime) -> str:
    with tenant_session(engine, tenant_id) as session:
        _, secret = create_endpoint(session, load_settings(), url=url, event_types=types, now=now)
    return secret


def _lead_moving(engine: Engine, tenant_id: int, partner: Partner, now: datetime) -> int:
    with tenant_session(engine, tenant_id) as session:
        lead = Lead(
            partner_id=partner.id or 0,
            email="kim@example.com",
            name="Kim",
            created_at=now,
            stage_changed_at=now,
        )
        session.add(lead)
        session.flush()
        for offset, stage in enumerate(("mql", "sql")):
            session.add(
                LeadStage(
                    lead_id=lead.id or 0,
                    stage=stage,
                    occurred_at=now + timedelta(minutes=offset),
                    created_at=now,
                )
            )
        return lead.id or 0


def test_what_a_tenant_records_reaches_its_receiver_signed_and_never_another_tenants(
    engine: Engine, tenant_a: int, tenant_b: int, receiver: Receiver
) -> None:
    now = datetime.now(UTC)  # the receiver checks the signature's age against its clock
    other = Receiver()
    secret = _endpoint(engine, tenant_a, receiver.url, ["*"], now)
    _endpoint(engine, tenant_b, other.url, ["*"], now)
    partner = _partner(engine, tenant_a, now)
    with tenant_session(engine, tenant_a) as session:
        add_task(session, partner, kind="call", due_at=now, created_by="test", now=now)
        suppress(session, "gone@example.com", reason="manual", source="test", now=now)
    lead_id = _lead_moving(engine, tenant_a, partner, now)

    report = deliver_due(engine, load_settings(), now + timedelta(seconds=1), owner="w1")

    assert report.delivered == 5 and report.failed == 0
    bodies = receiver.verified(secret)
    for headers, body in receiver.got:  # the library's own check, age included
        Webhook(secret).verify(body, headers)
    types = [body["type"] for body in bodies]
    assert sorted(types) == sorted(
        ["task.opened", "contact.suppressed", "lead.created"] + ["lead.stage_changed"] * 2
    )
    lead_events = [b for b in bodies if b["data"].get("lead_id") == lead_id]
    assert [(b["type"], b["data"]["stage"]) for b in lead_events] == [
        ("lead.created", "lead"),
        ("lead.stage_changed", "mql"),
        ("lead.stage_changed", "sql"),
    ]
    assert len({b["_id"] for b in bodies}) == 5
    assert other.got == []  # tenant B recorded nothing: its receiver hears nothing
    other.server.shutdown()


def test_a_receiver_that_is_down_gets_every_event_in_order_once_back(
    engine: Engine, tenant_a: int, receiver: Receiver
) -> None:
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    secret = _endpoint(engine, tenant_a, receiver.url, ["lead.created", "lead.stage_changed"], now)
    partner = _partner(engine, tenant_a, now)
    receiver.up = False
    lead_id = _lead_moving(engine, tenant_a, partner, now)
    settings = load_settings()

    first = deliver_due(engine, settings, now, owner="w1")
    # Only the lead's first event is tried: its stages wait behind it.
    assert (first.delivered, first.failed) == (0, 1)
    later = deliver_due(engine, settings, now + timedelta(seconds=6), owner="w1")
    assert (later.delivered, later.failed) == (0, 1)
    with tenant_session(engine, tenant_a) as session:
        waiting = list_deliveries(session, state=PENDING)
        assert len(waiting) == 3
        assert max(d.attempts for d in waiting) == 2 and min(d.attempts for d in waiting) == 0

    receiver.up = True
    back = deliver_due(engine, settings, now + timedelta(hours=1), owner="w2")

    assert (back.delivered, back.failed) == (3, 0)
    bodies = receiver.verified(secret)
    assert [(b["type"], b["data"]["stage"]) for b in bodies] == [
        ("lead.created", "lead"),
        ("lead.stage_changed", "mql"),
        ("lead.stage_changed", "sql"),
    ]
    assert all(b["data"]["lead_id"] == lead_id for b in bodies)
    with tenant_session(engine, tenant_a) as session:
        assert {d.state for d in list_deliveries(session)} == {DELIVERED}


def test_a_retry_and_a_replay_are_the_same_message(
    engine: Engine, tenant_a: int, receiver: Receiver
) -> None:
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    secret = _endpoint(engine, tenant_a, receiver.url, ["task.opened"], now)
    partner = _partner(engine, tenant_a, now)
    with tenant_session(engine, tenant_a) as session:
        add_task(session, partner, kind="call", due_at=now, created_by="test", now=now)
    settings = load_settings()
    receiver.up = False
    deliver_due(engine, settings, now, owner="w1")
    receiver.up = True
    deliver_due(engine, settings, now + timedelta(seconds=10), owner="w1")
    with tenant_session(engine, tenant_a) as session:
        (delivery,) = list_deliveries(session)
        assert delivery.attempts == 2
        replay(session, delivery.id or 0, now=now + timedelta(minutes=1))
    deliver_due(engine, settings, now + timedelta(minutes=1), owner="w1")

    bodies = receiver.verified(secret)
    assert len(bodies) == 2 and bodies[0]["_id"] == bodies[1]["_id"] == delivery.msg_id
    assert bodies[0]["data"] == bodies[1]["data"]


def test_nothing_is_reported_for_what_was_rolled_back(
    engine: Engine, tenant_a: int, receiver: Receiver
) -> None:
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    _endpoint(engine, tenant_a, receiver.url, ["*"], now)
    partner = _partner(engine, tenant_a, now)
    with pytest.raises(RuntimeError), tenant_session(engine, tenant_a) as session:
        add_task(session, partner, kind="call", due_at=now, created_by="test", now=now)
        session.flush()
        raise RuntimeError("the command failed after the task was written")
    with tenant_session(engine, tenant_a) as session:
        assert list_deliveries(session) == []


def test_an_endpoint_failing_for_days_is_disabled_with_a_task_and_resumes_in_order(
    engine: Engine, tenant_a: int, receiver: Receiver
) -> None:
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    secret = _endpoint(engine, tenant_a, receiver.url, ["lead.created", "lead.stage_changed"], now)
    partner = _partner(engine, tenant_a, now)
    receiver.up = False
    _lead_moving(engine, tenant_a, partner, now)
    settings = load_settings()
    moment, disabled = now, []
    for _ in range(12):  # every attempt fails, hours apart, for more than the five days
        report = deliver_due(
            engine, settings, moment, owner="w1", on_disabled=outgoing_events.open_task_for_disabled
        )
        disabled += report.disabled
        moment += timedelta(hours=12)
    assert len(disabled) == 1
    with tenant_session(engine, tenant_a) as session:
        endpoint = session.exec(select(WebhookEndpoint)).one()
        assert not endpoint.enabled and "every delivery failed" in endpoint.disabled_reason
        task = session.exec(
            select(ConciergeTask).where(ConciergeTask.kind == "webhook_disabled")
        ).one()
        assert task.partner_id is None and receiver.url in task.title
        assert len(list_deliveries(session, state=PENDING)) == 3  # nothing lost
    assert deliver_due(engine, settings, moment, owner="w1").failed == 0  # not tried

    receiver.up = True
    with tenant_session(engine, tenant_a) as session:
        set_enabled(session, endpoint.id or 0, True, now=moment)
    deliver_due(engine, settings, moment, owner="w1")

    assert [b["type"] for b in receiver.verified(secret)] == [
        "lead.created",
        "lead.stage_changed",
        "lead.stage_changed",
    ]


def test_deliveries_of_one_tenant_are_not_found_from_another(
    engine: Engine, tenant_a: int, tenant_b: int, receiver: Receiver
) -> None:
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    _endpoint(engine, tenant_a, receiver.url, ["task.opened"], now)
    partner = _partner(engine, tenant_a, now)
    with tenant_session(engine, tenant_a) as session:
        add_task(session, partner, kind="call", due_at=now, created_by="test", now=now)
    with tenant_session(engine, tenant_a) as session:
        (delivery,) = list_deliveries(session)
        endpoint_id = delivery.endpoint_id
    with tenant_session(engine, tenant_b) as session:
        assert list_deliveries(session) == []
        with pytest.raises(Exception, match="no webhook delivery"):
            replay(session, delivery.id or 0, now=now)
        with pytest.raises(Exception, match="no webhook endpoint"):
            set_enabled(session, endpoint_id, False, now=now)
        assert session.exec(select(WebhookDelivery)).all() == []


def test_on_both_databases_one_happening_is_one_delivery_and_two_workers_share(
    any_engine: Engine, receiver: Receiver
) -> None:
    """PostgreSQL takes the same ON CONFLICT DO NOTHING and the same leases as SQLite:
    the same happening enqueued twice is one delivery; two workers never both send one."""
    from conftest import make_tenant

    from partnercast.core.webhook_outbox import Happening, enqueue

    now = datetime.now(UTC)
    tenant = make_tenant(any_engine, "vendor-pg")
    secret = _endpoint(any_engine, tenant, receiver.url, ["task.opened"], now)
    happenings = [
        Happening("task.opened", f"task:{n}", f"task:{n}", {"n": n}, now) for n in range(20)
    ]
    with any_engine.begin() as connection:
        assert enqueue(connection, tenant, happenings) == 20
        assert enqueue(connection, tenant, happenings[:5]) == 0
    settings = load_settings()
    reports = []
    threads = [
        threading.Thread(
            target=lambda owner=owner: reports.append(
                deliver_due(any_engine, settings, now, owner=owner)
            )
        )
        for owner in ("w1", "w2")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(report.delivered for report in reports) == 20
    assert sorted(body["data"]["n"] for body in receiver.verified(secret)) == list(range(20))
